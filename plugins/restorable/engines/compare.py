"""Human-readable differences between a recorded description and a live one.

Engine-agnostic: works on the shared shape of ``SnapshotMetadata.schema`` (tables, indexes,
constraints, sequences, views, functions) and on any extra keyed section an engine adds
("triggers", "grants", ...). An empty list means the restored database matches.

Two tolerances, both deliberate:

- Sequences are not transactional: the value recorded at capture time is read a moment before
  the dump tool reads its own, so a restored sequence may be *ahead* of the record (in the
  direction of its ``increment``) but never behind it.
- A section present only in ``found`` is ignored (a manifest written by an older version that
  did not record it); a section recorded but missing from ``found`` is a difference.

Keys of manifests written before names were quoted (``sales.Order Notes`` for what is now
``sales."Order Notes"``) are read in the found spelling when exactly one found key unquotes to
them (see ``align_legacy_keys``); two tables that old keys could not tell apart stay a difference.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any

from restorable.metadata import Description, SnapshotMetadata, legacy_key

#: Sections that are one record (field -> value) rather than name -> definition.
RECORD_SECTIONS = {"large_objects", "database", "database_properties"}
#: How a definition is shown in a message: long ones are cut.
MAX_SHOWN = 160


#: How a sealed value is written in a manifest: ``name=sha256:<hex of the value>``.
SEALED_MARK = "sha256:"


def digest_setting(setting: str) -> str:
    """``name=value`` -> ``name=sha256:<hex>``: what a manifest keeps of a value that may be secret."""
    name, _, value = setting.partition("=")
    return f"{name}={SEALED_MARK}{hashlib.sha256(value.encode()).hexdigest()}"


def is_digest(value: str) -> bool:
    """Whether a setting's value is a digest written by ``digest_setting`` rather than a value."""
    return re.fullmatch(re.escape(SEALED_MARK) + "[0-9a-f]{64}", value) is not None


def _is_sealed(settings: Any) -> bool:
    return isinstance(settings, list) and any(is_digest(s.partition("=")[2]) for s in settings if isinstance(s, str))


def seal_view(found: dict[str, Any], recorded: dict[str, Any]) -> dict[str, Any]:
    """``found`` database properties with settings digested wherever ``recorded`` keeps digests,
    so a restored database (which holds the values) compares with a manifest (which holds hashes)."""
    view = dict(found)
    if _is_sealed(recorded.get("settings")):
        view["settings"] = [digest_setting(s) for s in found.get("settings") or []]
    recorded_roles = recorded.get("role_settings") or {}
    if any(_is_sealed(v) for v in recorded_roles.values()):
        view["role_settings"] = {
            role: [digest_setting(s) for s in settings] for role, settings in (found.get("role_settings") or {}).items()
        }
    return view


def _show(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 3] + "..."


def _singular(section: str) -> str:
    words = {"indexes": "index", "materialized_views": "materialized view", "default_acls": "default ACL"}
    if section in words:
        return words[section]
    return section[:-1].replace("_", " ") if section.endswith("s") else section.replace("_", " ")


def align_legacy_keys(expected: dict[str, Any], found: Mapping[str, Any]) -> dict[str, Any]:
    """``expected`` with each key that ``found`` lacks renamed to the one found key whose unquoted
    spelling it is (a manifest written before names were quoted); any other key is kept."""
    missing = [key for key in expected if key not in found]
    if not missing:
        return expected
    by_legacy: dict[str, list[str]] = {}
    for key in found:
        if key not in expected:
            by_legacy.setdefault(legacy_key(key), []).append(key)
    renamed = {}
    for key in missing:
        candidates = by_legacy.get(key, [])
        if len(candidates) == 1:
            renamed[key] = candidates[0]
    return {renamed.get(key, key): value for key, value in expected.items()}


def compare_row_counts(expected: dict[str, int], found: dict[str, int]) -> list[str]:
    out: list[str] = []
    for table in sorted(expected.keys() | found.keys()):
        if table not in found:
            out.append(f"table {table}: missing (expected {expected[table]} rows)")
        elif table not in expected:
            out.append(f"table {table}: not expected (found {found[table]} rows)")
        elif expected[table] != found[table]:
            out.append(f"row count of {table}: expected {expected[table]}, found {found[table]}")
    return out


def compare_tables(expected: dict[str, Any], found: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for table in sorted(expected.keys() | found.keys()):
        if table not in found:
            out.append(f"table {table}: missing from the schema")
            continue
        if table not in expected:
            out.append(f"table {table}: not expected in the schema")
            continue
        exp_cols = {c["name"]: c for c in expected[table].get("columns", [])}
        got_cols = {c["name"]: c for c in found[table].get("columns", [])}
        for name, col in exp_cols.items():
            other = got_cols.get(name)
            if other is None:
                out.append(f"column {table}.{name}: missing (expected {col.get('type')})")
                continue
            if col.get("type") != other.get("type"):
                out.append(f"column {table}.{name}: type {col.get('type')} expected, found {other.get('type')}")
            if col.get("nullable") != other.get("nullable"):
                want = "nullable" if col.get("nullable") else "NOT NULL"
                got = "nullable" if other.get("nullable") else "NOT NULL"
                out.append(f"column {table}.{name}: {want} expected, found {got}")
        for name in got_cols.keys() - exp_cols.keys():
            out.append(f"column {table}.{name}: not expected (found {got_cols[name].get('type')})")
        common = [n for n in exp_cols if n in got_cols]
        got_order = [n for n in got_cols if n in exp_cols]
        if common != got_order:
            out.append(f"columns of {table}: order {', '.join(common)} expected, found {', '.join(got_order)}")
        exp_pk, got_pk = expected[table].get("primary_key", []), found[table].get("primary_key", [])
        if exp_pk != got_pk:
            out.append(
                f"primary key of {table}: ({', '.join(exp_pk) or 'none'}) expected, "
                f"found ({', '.join(got_pk) or 'none'})"
            )
    return out


def compare_sequences(expected: dict[str, Any], found: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for seq in sorted(expected.keys() | found.keys()):
        if seq not in found:
            out.append(f"sequence {seq}: missing")
            continue
        if seq not in expected:
            out.append(f"sequence {seq}: not expected")
            continue
        exp, got = expected[seq], found[seq]
        exp_value, got_value = exp.get("last_value"), got.get("last_value")
        if exp_value == got_value and exp.get("is_called") == got.get("is_called"):
            continue
        direction = 1 if (exp.get("increment") or 1) > 0 else -1
        if exp_value is not None and got_value is not None:
            ahead = (got_value - exp_value) * direction > 0
            # Same value but is_called set: nextval() will hand out the next one, also ahead.
            if ahead or (exp_value == got_value and got.get("is_called") and not exp.get("is_called")):
                continue
        out.append(
            f"sequence {seq}: value {exp_value} (is_called={exp.get('is_called')}) expected, "
            f"found {got_value} (is_called={got.get('is_called')})"
        )
    return out


def compare_keyed(section: str, expected: dict[str, Any], found: dict[str, Any]) -> list[str]:
    kind = _singular(section)
    out: list[str] = []
    for key in sorted(expected.keys() | found.keys()):
        if key not in found:
            out.append(f"{kind} {key}: missing")
        elif key not in expected:
            out.append(f"{kind} {key}: not expected (found {_show(found[key])})")
        elif expected[key] != found[key]:
            out.append(f"{kind} {key}: {_show(expected[key])} expected, found {_show(found[key])}")
    return out


def compare_descriptions(expected: SnapshotMetadata | Description, found: Description) -> list[str]:
    """Differences between what was recorded (``expected``) and what a database holds (``found``)."""
    out = compare_row_counts(align_legacy_keys(expected.row_counts, found.row_counts), found.row_counts)
    for section in sorted(expected.schema):
        exp = expected.schema[section]
        if section not in found.schema:
            out.append(f"schema section {section!r}: recorded but not described")
            continue
        got = found.schema[section]
        if section not in RECORD_SECTIONS and isinstance(exp, dict) and isinstance(got, dict):
            exp = align_legacy_keys(exp, got)
        if section == "tables":
            out += compare_tables(exp or {}, got or {})
        elif section == "sequences":
            out += compare_sequences(exp or {}, got or {})
        elif section in RECORD_SECTIONS and isinstance(exp, dict) and isinstance(got, dict):
            if section == "database_properties":
                got = seal_view(got, exp)
            for field in sorted(exp.keys() | got.keys()):
                if exp.get(field) != got.get(field):
                    out.append(f"{section}.{field}: {_show(exp.get(field))} expected, found {_show(got.get(field))}")
        elif isinstance(exp, dict) and isinstance(got, dict):
            out += compare_keyed(section, exp, got)
        elif exp != got:
            out.append(f"{section}: {_show(exp)} expected, found {_show(got)}")
    return out
