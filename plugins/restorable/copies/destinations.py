"""A copy destination as ordinary core services: the same commands, another bucket and prefix."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from restorable.exceptions import ConfigError
from restorable.services import Services

if TYPE_CHECKING:
    from restorable.config import RestorableConfig
    from restorable.config_copies import CopyDestination


def destinations(config: RestorableConfig, names: list[str] | None = None) -> list[CopyDestination]:
    """The configured copies (``names``: only those, each checked to exist), in config order."""
    if names is None:
        return list(config.storage.copies)
    return [destination(config, name) for name in names]


def destination(config: RestorableConfig, name: str) -> CopyDestination:
    """The copy called ``name``; ConfigError naming the configured ones when there is none."""
    for copy in config.storage.copies:
        if copy.name == name:
            return copy
    known = ", ".join(c.name for c in config.storage.copies) or "none"
    raise ConfigError(
        f"{config.path}: storage.copies has no copy named {name!r}",
        hint=f"Configured copies: {known}",
    )


def copy_services(services: Services, name: str) -> Services:
    """``services`` with the copy ``name`` as its storage: each duty's connection is the copy's own.

    The copy's Object Lock replaces the primary's; a copy has no copies of its own.
    """
    copy = destination(services.config, name)
    storage = replace(
        services.config.storage,
        conn_id=copy.conn_id,
        bucket=copy.bucket,
        prefix=copy.prefix,
        lock_mode=copy.lock_mode,
        lock_days=copy.lock_days,
        restore_conn_id=copy.restore_conn_id,
        lifecycle_conn_id=copy.lifecycle_conn_id,
        copies=(),
    )
    return replace(services, config=replace(services.config, storage=storage))
