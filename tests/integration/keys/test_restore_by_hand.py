"""The README's restore by hand of an envelope-mode backup, run as written: ``bao``, ``age``, ``zstd``, ``pg_restore``.

Only the commands an operator types during an incident, with the restore side's token in ``BAO_TOKEN``
(never on a command line); nothing of Restorable runs after the backup.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from devstack.chain import make_chain
from restorable.commands.backup import run_backup

pytestmark = pytest.mark.integration

README = Path(__file__).resolve().parents[3] / "README.md"
UNWRAP = (
    'age -d -i <(bao write -field=plaintext transit/decrypt/restorable ciphertext="$(jq -r .ciphertext key.json)" \\\n'
    "            | base64 -d) data.pgdump.zst.age | zstd -d > shop.pgdump"
)


def test_readme_restore_by_hand_of_an_envelope_backup(tmp_path, pg_sample, pg_target_server, seaweed, bucket, openbao):
    assert UNWRAP in README.read_text(), "the README's by-hand commands changed: change this test with them"
    chain = make_chain(
        tmp_path,
        source=pg_sample,
        engine="postgres",
        s3=seaweed.connection(),
        bucket=bucket,
        target=pg_target_server.connection("postgres"),
        kms={
            "encrypt": openbao.connection("backup", "restorable_kms_encrypt"),
            "decrypt": openbao.connection("restore", "restorable_kms_decrypt"),
        },
    )
    manifest = run_backup(chain.services, "shop")
    work = tmp_path / "by-hand"
    work.mkdir()
    client = seaweed.client()
    wanted = {"key.json": manifest.encryption["key_object"]["key"], "data.pgdump.zst.age": manifest.dump.key}
    for name, key in wanted.items():
        (work / name).write_bytes(client.get_object(Bucket=bucket, Key=key)["Body"].read())

    target = pg_target_server.connection("postgres")
    pg_target_server.drop_database("shop_by_hand")
    pg_target_server.execute("create database shop_by_hand")
    env = {
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "BAO_ADDR": openbao.url,
        "BAO_TOKEN": openbao.tokens["restore"],
        "PGPASSWORD": target.password,
    }
    # The sample's roles are not on this server: owners and grants are left out (the README creates the roles).
    restore = f"pg_restore -h {target.host} -p {target.port} -U {target.login} -d shop_by_hand --no-owner --no-acl"
    script = f"set -euo pipefail\n{UNWRAP}\n{restore} --exit-on-error shop.pgdump\n"
    done = subprocess.run(["bash", "-c", script], cwd=work, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    table, rows = max(manifest.metadata.row_counts.items(), key=lambda kv: kv[1])
    schema, _, name = table.rpartition(".")
    found = pg_target_server.query(f'select count(*) from "{schema}"."{name}"', database="shop_by_hand")
    assert found == [(rows,)] and rows > 0
    assert not [p for p in work.iterdir() if b"AGE-SECRET-KEY" in p.read_bytes()]  # the identity stayed in a pipe
    pg_target_server.drop_database("shop_by_hand")
