"""Envelope mode against a real OpenBao (transit, raft storage, policies enforced) and SeaweedFS.

A fresh age identity per backup, wrapped by transit with the backup token (encrypt only): that token
cannot unwrap it, the restore token can, and the identity is found in no file, log line, manifest,
bucket object, child process's command line or environment. Rotation rewraps every key object under
the newest key version without touching the data, after which the old versions can be retired.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil
import pytest

from devstack.chain import make_chain
from restorable.commands.backup import run_backup
from restorable.commands.restore import restore_backup
from restorable.commands.verify import verify_backup
from restorable.exceptions import KeyServiceError
from restorable.keys.envelope import EnvelopeProvider, kms_for
from restorable.keys.rotation import key_status, rotate_keys
from restorable.keys.transit import TransitKms
from restorable.stream.header import read_header

pytestmark = pytest.mark.integration


def _kms(openbao) -> dict:
    return {
        duty: openbao.connection(role, f"restorable_kms_{duty}")
        for duty, role in (("encrypt", "backup"), ("decrypt", "restore"), ("rotate", "rotate"))
    }


@pytest.fixture
def pg_envelope(tmp_path, pg_sample, pg_target_server, seaweed, bucket, openbao):
    return make_chain(
        tmp_path,
        source=pg_sample,
        engine="postgres",
        s3=seaweed.connection(),
        bucket=bucket,
        target=pg_target_server.connection("postgres"),
        kms=_kms(openbao),
    )


@pytest.fixture
def mariadb_envelope(tmp_path, mariadb_sample, mariadb_target_server, seaweed, bucket, openbao):
    return make_chain(
        tmp_path,
        source=mariadb_sample,
        engine="mysql",
        s3=seaweed.connection(),
        bucket=bucket,
        target=mariadb_target_server.connection("mysql"),
        kms=_kms(openbao),
    )


@contextmanager
def watched_children() -> Iterator[list[str]]:
    """Every command line and environment of this process's children while the block runs."""
    seen: list[str] = []
    stop = threading.Event()

    def watch() -> None:
        me = psutil.Process()
        while not stop.is_set():
            for proc in me.children(recursive=True):
                try:
                    environ = "\n".join(f"{k}={v}" for k, v in proc.environ().items())
                    seen.append(" ".join(proc.cmdline()) + "\n" + environ)
                except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                    continue
            time.sleep(0.005)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        yield seen
    finally:
        stop.set()
        watcher.join()


def _files_holding(secret: bytes, roots: list[Path], since: float) -> list[str]:
    """Files under ``roots`` written since ``since`` that hold ``secret``. Other tests (other pytest
    workers) create and remove directories in the temp dir meanwhile: os.walk skips what vanished."""
    found = []
    for root in roots:
        paths = (Path(d) / f for d, _, files in os.walk(root, onerror=lambda error: None) for f in files)
        for path in paths:
            try:
                if path.is_file() and path.stat().st_mtime >= since and path.stat().st_size < 64 << 20:
                    if secret in path.read_bytes():
                        found.append(str(path))
            except OSError:
                continue
    return found


def _bucket_holding(chain, secret: bytes) -> list[str]:
    store = chain.services.store()
    return [o.key for o in store.list_objects("") if secret in store.get_bytes(o.key)]


@pytest.mark.parametrize("engine", ["postgres", "mysql"])
def test_envelope_round_trip_backup_token_cannot_unwrap(engine, request, caplog, tmp_path):
    chain = request.getfixturevalue("pg_envelope" if engine == "postgres" else "mariadb_envelope")
    started = time.time() - 1
    caplog.set_level(logging.DEBUG)
    with watched_children() as backup_children:
        # A slow consumer keeps the dump tool alive long enough to be seen.
        manifest = run_backup(chain.services, "shop", on_progress=lambda n: time.sleep(0.02))
    assert backup_children, "the watcher never saw the dump tool"

    enc = manifest.encryption
    assert enc["provider"] == "envelope" and enc["kms"] == "openbao_transit" and enc["key_name"] == "restorable"
    assert enc["key_version"] >= 1 and enc["recipients"] == [enc["envelope_recipient"], chain.recipient]
    wrapped = json.loads(chain.services.store().get_bytes(enc["key_object"]["key"]))
    assert wrapped["ciphertext"].startswith("vault:v") and wrapped["recipient"] == enc["envelope_recipient"]
    # Encrypted to the backup's own key and the break-glass key: two X25519 stanzas, in data and sealed alike.
    for key in [manifest.dump.key] + ([manifest.sealed["key"]] if manifest.sealed else []):
        assert read_header(chain.services.store().get_bytes(key)[:16384]).x25519 == 2

    # The backup side's token may only encrypt: OpenBao refuses it the unwrap, and so does a restore using it.
    backup_side = TransitKms(chain.services.resolve("restorable_kms_encrypt"), mount="transit", key="restorable")
    with pytest.raises(KeyServiceError, match="permission denied"):
        backup_side.decrypt(wrapped["ciphertext"])
    with pytest.raises(KeyServiceError, match="permission denied"):
        EnvelopeProvider(chain.services).unwrap_current(chain.services.store(), manifest, backup_side)

    # The restore side unwraps and restores; the restored copy matches the manifest.
    with watched_children() as restore_children:
        report = restore_backup(
            chain.services, "shop", manifest.backup_id, target=chain.target, database="restored_envelope"
        )
    assert report.ok, report.differences
    assert report.found_rows == report.expected_rows > 0
    assert verify_backup(chain.services, "shop", manifest.backup_id, deep=True)["ok"]
    # The break-glass key alone opens it too (no KMS).
    assert verify_backup(chain.services, "shop", manifest.backup_id, deep=True, identity=chain.identity)["ok"]

    _, identity = EnvelopeProvider(chain.services).unwrap_current(
        chain.services.store(), manifest, kms_for(chain.services, "restorable_kms_decrypt")
    )
    secret = identity.encode()
    assert identity.startswith("AGE-SECRET-KEY-1")
    assert not [c for c in backup_children + restore_children if identity in c]
    assert identity not in caplog.text and identity.lower() not in caplog.text.lower()
    assert identity not in json.dumps(manifest.to_dict())
    assert not _bucket_holding(chain, secret)
    assert not _files_holding(secret, [tmp_path, Path(tempfile.gettempdir())], started)
    assert identity not in "\n".join(f"{k}={v}" for k, v in os.environ.items())


def test_rotation_rewraps_every_key_and_old_versions_retire(
    tmp_path, pg_sample, pg_target_server, openbao, seaweed, bucket
):
    # Under Object Lock: rotation adds key objects (locked like their backup), it never overwrites one.
    chain = make_chain(
        tmp_path,
        source=pg_sample,
        engine="postgres",
        s3=seaweed.connection(),
        bucket=bucket,
        target=pg_target_server.connection("postgres"),
        kms=_kms(openbao),
        object_lock=True,
    )
    start_version = int(openbao.key_info()["latest_version"])
    first = run_backup(chain.services, "shop")
    new_version = openbao.rotate_key()
    second = run_backup(chain.services, "shop")  # wrapped under the new version already
    assert (first.encryption["key_version"], second.encryption["key_version"]) == (start_version, new_version)
    client = seaweed.client()

    def data_versions() -> dict:
        keys = [first.dump.key, second.dump.key] + [m.sealed["key"] for m in (first, second) if m.sealed]
        listed = {key: client.list_object_versions(Bucket=bucket, Prefix=key)["Versions"] for key in keys}
        return {key: [(v["VersionId"], v["ETag"]) for v in versions] for key, versions in listed.items()}

    before = data_versions()
    status = key_status(chain.services)
    shop = status["databases"]["shop"]
    assert status["latest_version"] == new_version and shop["rewrap_needed"]
    assert {v["key_version"] for v in shop["key_versions"]} == {start_version, new_version}

    result = chain.run_cli("keys", "rotate", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert [(r["backup_id"], r["from_version"], r["to_version"]) for r in report["rotated"]] == [
        (first.backup_id, start_version, new_version)
    ]
    assert [r["backup_id"] for r in report["current"]] == [second.backup_id]
    assert chain.services.store().get_json(report["record_key"])["ok"] is True
    (rewrapped,) = report["rotated"]
    assert chain.services.store().get_retention(rewrapped["key"])[0] == "GOVERNANCE"
    own_key = first.encryption["key_object"]
    assert [v["VersionId"] for v in client.list_object_versions(Bucket=bucket, Prefix=own_key["key"])["Versions"]] == [
        own_key["version_id"]
    ]  # the backup's own key.json was not rewritten
    assert data_versions() == before  # not a byte of data or sealed settings was written

    shop = key_status(chain.services)["databases"]["shop"]
    assert [(v["key_version"], v["backups"]) for v in shop["key_versions"]] == [(new_version, 2)]
    assert not shop["rewrap_needed"]
    # Nothing left to do on a second run.
    again = rotate_keys(chain.services)
    assert not again.rotated and len(again.current) == 2

    # Retire every older key version: the first backup's own key.json no longer unwraps, its rewrap does.
    openbao.set_min_decryption_version(new_version)
    restore_kms = kms_for(chain.services, "restorable_kms_decrypt")
    with pytest.raises(KeyServiceError, match="disallowed|too old"):
        restore_kms.decrypt(
            json.loads(chain.services.store().get_bytes(first.encryption["key_object"]["key"]))["ciphertext"]
        )
    for manifest in (first, second):
        into = f"rotated_{manifest.backup_id[-8:]}"
        report = restore_backup(chain.services, "shop", manifest.backup_id, target=chain.target, database=into)
        assert report.ok, report.differences
    status = chain.run_cli("keys", "status")
    assert status.returncode == 0 and f"v{new_version}: 2 backup(s)" in status.stdout, status.stdout


def test_a_kms_that_refuses_or_is_down_stops_the_backup_before_the_dump(
    tmp_path, pg_sample, pg_target_server, seaweed, bucket, openbao
):
    from devstack.ports import free_port
    from restorable.connections import ConnectionInfo

    down = ConnectionInfo("restorable_kms_encrypt", "vault", host=f"http://127.0.0.1:{free_port()}", password="s.x")
    # The restore token may decrypt but not encrypt: a backup configured with it is refused the wrap.
    refused = openbao.connection("restore", "restorable_kms_encrypt")
    for encrypt, expected in ((down, "did not answer"), (refused, "permission denied")):
        (tmp_path / expected.replace(" ", "_")).mkdir()
        chain = make_chain(
            tmp_path / expected.replace(" ", "_"),
            source=pg_sample,
            engine="postgres",
            s3=seaweed.connection(),
            bucket=bucket,
            target=pg_target_server.connection("postgres"),
            kms={"encrypt": encrypt, "decrypt": openbao.connection("restore", "restorable_kms_decrypt")},
        )
        with pytest.raises(KeyServiceError, match=expected):
            run_backup(chain.services, "shop")
        assert chain.services.catalog().backup_ids("shop") == []
        layout = chain.services.catalog().layout
        assert [o.key for o in chain.services.store().list_objects(layout.database_prefix("shop"))] == []


def test_cli_verifies_deep_and_audits_an_envelope_backup(pg_envelope):
    chain = pg_envelope
    manifest = run_backup(chain.services, "shop")
    deep = chain.run_cli("verify", "shop", manifest.backup_id, "--deep", "--json")
    assert deep.returncode == 0, deep.stderr
    assert json.loads(deep.stdout)["found_plain_sha256"] == manifest.dump.plain_sha256
    audit = chain.run_cli("audit-encryption", "shop", "--json")
    assert audit.returncode == 0, audit.stderr
    assert json.loads(audit.stdout)["metadata"] >= 3  # manifest, summary, key.json (and verification records)


def test_a_planted_key_object_cannot_substitute_the_backups_key(pg_envelope):
    """The backup token may encrypt anything: a key object it plants wraps a key of its choosing. The restore
    side passes it over (it does not unwrap to the manifest's recipient), as it does a damaged one."""
    from restorable.keys.envelope import key_object
    from restorable.stream.keys import generate_identity, recipient_of

    chain = pg_envelope
    manifest = run_backup(chain.services, "shop")
    layout, store = chain.services.catalog().layout, chain.services.store()
    attacker_identity, attacker_recipient = generate_identity()
    wrapped = kms_for(chain.services, "restorable_kms_encrypt").encrypt(attacker_identity.encode())
    planted = key_object("shop", manifest.backup_id, "openbao_transit", "restorable", 9, wrapped, attacker_recipient)
    store.put_bytes(layout.rewrapped_key("shop", manifest.backup_id, "99991231T000000000000Z", 1), planted)
    store.put_bytes(layout.rewrapped_key("shop", manifest.backup_id, "99991231T000000000001Z", 1), b"not json")

    record, identity = EnvelopeProvider(chain.services).unwrap_current(
        store, manifest, kms_for(chain.services, "restorable_kms_decrypt")
    )
    assert record.key == manifest.encryption["key_object"]["key"]
    assert recipient_of(identity) == manifest.encryption["envelope_recipient"] != attacker_recipient
    assert verify_backup(chain.services, "shop", manifest.backup_id, deep=True)["ok"]
