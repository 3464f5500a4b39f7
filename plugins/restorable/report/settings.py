"""What the report states about protection settings: retention, Object Lock, encryption recipients.

Bucket settings are read as the lifecycle's credentials see them (the duty that audits the bucket
daily) and compared with what a backup bucket needs (``lifecycle.audit``); a setting these
credentials may not read is reported as such, never guessed. Object Lock is reported twice: as the
bucket is configured, and as applied to each backup of the period (its manifest's retention).
Key age: an age recipient carries no creation date, so its age is how long the bucket has held
backups encrypted to it (the oldest backup that lists it). In envelope mode each backup also has a
one-time recipient of its own, wrapped by the KMS: that one is not listed, the KMS key and the key
versions the period's backups were wrapped with are.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from restorable.config import DatabaseConfig
from restorable.exceptions import RestorableError
from restorable.repository.catalog import CatalogEntry
from restorable.repository.manifest import iso, utcnow
from restorable.services import Services


def _read(read: Callable[[], Any]) -> Any:
    try:
        return read()
    except RestorableError as exc:
        return {"unreadable": exc.message}


def bucket_settings(services: Services) -> dict[str, Any]:
    """Versioning, Object Lock and lifecycle rules of the bucket, with the audit's differences."""
    from restorable.commands.lifecycle import run_audit

    try:
        store = services.store("lifecycle")
    except RestorableError as exc:
        return {"unreadable": exc.message}
    versioning = _read(store.get_bucket_versioning)
    lock = _read(store.get_object_lock_configuration)
    rules = _read(store.get_bucket_lifecycle_rules)
    try:
        drifts = [d.to_dict() for d in run_audit(services, fix=False)]
    except RestorableError as exc:
        drifts = [{"setting": "audit", "expected": "readable", "found": exc.message}]
    return {
        "versioning": versioning.get("Status") if "unreadable" not in versioning else versioning["unreadable"],
        "object_lock": _describe_lock(lock),
        "lifecycle_rules": [r.get("ID") or "(no id)" for r in rules]
        if isinstance(rules, list)
        else (rules or {}).get("unreadable", "none"),
        "drifts": drifts,
    }


def _describe_lock(lock: Any) -> str:
    if not lock:
        return "not enabled"
    if "unreadable" in lock:
        return f"could not be read: {lock['unreadable']}"
    if lock.get("ObjectLockEnabled") != "Enabled":
        return "not enabled"
    default = (lock.get("Rule") or {}).get("DefaultRetention") or {}
    if not default:
        return "enabled (retention set per object)"
    days = default.get("Days") or f"{default.get('Years')} years"
    return f"enabled, default {default.get('Mode')} {days} days"


def database_settings(
    services: Services, db: DatabaseConfig, in_period: list[CatalogEntry], entries: list[CatalogEntry]
) -> dict[str, Any]:
    """The database's retention, its Object Lock as configured and applied, and its encryption recipients."""
    lock = services.config.object_lock_for(db.id)
    applied = [e.manifest.object_lock for e in in_period if e.manifest.object_lock]
    return {
        "retention": dict(db.retention) if db.retention else None,
        "object_lock": {
            "configured": {"mode": lock[0], "days": lock[1]} if lock else None,
            "backups_locked": len(applied),
            "backups": len(in_period),
            "latest_retain_until": max((a.get("retain_until") or "" for a in applied), default=None),
        },
        "encryption": _recipients(services, in_period, entries),
        "kms_keys": _kms_keys(in_period),
    }


def _kms_keys(in_period: list[CatalogEntry]) -> list[dict[str, Any]]:
    """Envelope mode: which KMS key (and versions) wrapped the period's backup keys, and how often."""
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for entry in in_period:
        encryption = entry.manifest.encryption
        if not encryption.get("kms"):
            continue
        key = found.setdefault(
            (encryption["kms"], str(encryption.get("key_name"))),
            {"kms": encryption["kms"], "key_name": encryption.get("key_name"), "versions": [], "backups": 0},
        )
        key["backups"] += 1
        if encryption.get("key_version") not in key["versions"]:
            key["versions"].append(encryption.get("key_version"))
    return list(found.values())


def _lasting(encryption: dict[str, Any]) -> list[str]:
    """The recipients a backup was encrypted to, but the envelope's one-time recipient of that backup."""
    one_time = encryption.get("envelope_recipient")
    return [r for r in encryption.get("recipients") or [] if r != one_time]


def _recipients(services: Services, in_period: list[CatalogEntry], entries: list[CatalogEntry]) -> list[dict[str, Any]]:
    configured = list(services.config.encryption.recipients)
    used: dict[str, int] = {}
    for entry in in_period:
        for recipient in _lasting(entry.manifest.encryption):
            used[recipient] = used.get(recipient, 0) + 1
    wanted = set(configured) | set(used)
    first: dict[str, datetime] = {}
    # Oldest first, reading manifests only until every recipient has been seen once.
    for entry in entries:
        if wanted <= set(first):
            break
        try:
            listed = _lasting(entry.manifest.encryption)
        except RestorableError:
            continue
        for recipient in listed:
            first.setdefault(recipient, entry.created)
    now = utcnow()
    return [
        {
            "recipient": recipient,
            "in_config": recipient in configured,
            "backups_in_period": used.get(recipient, 0),
            "first_used": iso(first[recipient]) if recipient in first else None,
            "key_age_days": round((now - first[recipient].astimezone(UTC)).total_seconds() / 86400, 1)
            if recipient in first
            else None,
        }
        for recipient in sorted(wanted, key=lambda r: (r not in configured, r))
    ]
