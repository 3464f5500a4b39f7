"""The SQL the engines run, kept as files under ``include/sql/<engine>/<name>.sql``.

SQL lives in files so it can be read, reviewed and run by hand (``psql -f``) during an incident,
and so that capture (in the dump's snapshot) and describe (on a restored copy) run the very same
text and cannot drift apart.

``include/`` is found from ``RESTORABLE_INCLUDE_DIR`` when set, otherwise by walking up from this
package to the first directory holding ``include/sql`` (the repository or the Airflow project
root, where ``plugins/`` and ``include/`` sit side by side).
"""

from __future__ import annotations

import functools
import os
import re
from pathlib import Path

from restorable.exceptions import ConfigError

_NAME = re.compile(r"^[a-z0-9_]+$")


def include_dir() -> Path:
    """The project's ``include/`` directory."""
    env = os.environ.get("RESTORABLE_INCLUDE_DIR")
    if env:
        path = Path(env)
        if not (path / "sql").is_dir():
            raise ConfigError(
                f"RESTORABLE_INCLUDE_DIR={env} has no sql/ directory",
                hint="Point it at the project's include/ directory",
            )
        return path
    for parent in Path(__file__).resolve().parents:
        if (parent / "include" / "sql").is_dir():
            return parent / "include"
    raise ConfigError(
        f"cannot find include/sql above {Path(__file__).resolve().parent}",
        hint="Set RESTORABLE_INCLUDE_DIR to the project's include/ directory",
    )


@functools.cache
def _read(directory: str, engine: str, name: str) -> str:
    path = Path(directory) / "sql" / engine / f"{name}.sql"
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"SQL file {path} is missing",
            hint="Reinstall the project's include/ directory or set RESTORABLE_INCLUDE_DIR",
        ) from None


def load_sql(engine: str, name: str) -> str:
    """The text of ``include/sql/<engine>/<name>.sql`` (cached per include directory)."""
    if not _NAME.match(engine) or not _NAME.match(name):
        raise ValueError(f"invalid SQL file reference {engine!r}/{name!r}")
    return _read(str(include_dir()), engine, name)


_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")


def sql_with_identifiers(engine: str, name: str, **identifiers: str) -> str:
    """The SQL of a file whose ``{placeholders}`` stand for identifiers, each given already quoted.

    Comment lines are dropped first, so a placeholder is replaced only where the statement has it:
    a name may hold a newline, which would end a comment line and turn the rest into SQL.
    """
    text = "\n".join(line for line in load_sql(engine, name).splitlines() if not line.lstrip().startswith("--"))
    missing = set(_PLACEHOLDER.findall(text)) - identifiers.keys()
    if missing:
        raise ValueError(f"SQL file {engine}/{name} needs identifiers {sorted(missing)}")
    return _PLACEHOLDER.sub(lambda m: identifiers[m.group(1)], text)
