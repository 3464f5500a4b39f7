"""The fault matrix: each fault injected into the ``restorable`` command, for both engines.

Every row asserts the same contract, whatever the fault: the command exits with its documented
code; its last line on stderr is one ``restorable: error: ...`` line naming what failed; no
traceback; no secret (database password, S3 secret key, age identity) in anything it printed;
no backup committed by a failing command; nothing left in its temporary directory; and no
database left behind by a restore that failed.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from devstack.chain import Chain, connection_uri, make_chain
from devstack.ports import free_port
from restorable.commands.backup import run_backup
from restorable.repository.layout import KeyKind

pytestmark = pytest.mark.integration


@dataclass
class World:
    """One chain per engine, each with a committed backup, sharing one bucket."""

    chains: dict[str, Chain]
    seaweed: object
    #: One bucket per engine: both chains back up a database called "shop".
    buckets: dict[str, str]
    servers: dict[str, object]
    tmp: Path
    backups: dict[str, str] = field(default_factory=dict)

    def secrets(self, engine: str) -> list[str]:
        chain = self.chains[engine]
        source = chain.services.resolve("src")
        s3 = chain.services.resolve("restorable_s3")
        return [s for s in (chain.identity, source.password, s3.password, chain.target.password) if s]


@dataclass
class Fault:
    name: str
    engine: str
    #: The CLI arguments after ``--config <file>``; "{backup}" is the engine's committed backup id.
    args: list[str]
    exit_code: int
    #: A piece of the one-line message that names what failed.
    message: str
    #: Makes the fault; returns extra environment for the command.
    prepare: Callable[[World, Path], dict[str, str] | None] = lambda world, tmp: None
    #: A database a failing restore must not leave on the target.
    not_left: str | None = None
    use_config: bool = True


def override(engine: str, conn_id: str, **changes):
    def prepare(world: World, tmp: Path) -> dict[str, str]:
        conn = world.chains[engine].services.resolve(conn_id)
        return {f"AIRFLOW_CONN_{conn_id.upper()}": connection_uri(dataclasses.replace(conn, **changes))}

    return prepare


def s3_extra(engine: str, **extra):
    def prepare(world: World, tmp: Path) -> dict[str, str]:
        conn = world.chains[engine].services.resolve("restorable_s3")
        changed = dataclasses.replace(conn, extra={**conn.extra, **extra})
        return {"AIRFLOW_CONN_RESTORABLE_S3": connection_uri(changed)}

    return prepare


def identity_file(text: str):
    def prepare(world: World, tmp: Path) -> None:
        path = tmp / "key.txt"
        path.write_text(text)
        path.chmod(0o600)

    return prepare


def wrong_identity(world: World, tmp: Path) -> None:
    from restorable.stream.keys import generate_identity

    identity, _ = generate_identity()
    identity_file(f"{identity}\n")(world, tmp)


def fresh_backup_with(damage: Callable[[World, str, str], None], engine: str, *, in_place: bool = True):
    """A backup of its own, damaged in the bucket; the command then runs against "{fresh}".

    ``in_place``: the damaged bytes become the version the manifest records, as rot of the stored
    bytes would look (a plain overwrite only adds a newer version, which reads never use).
    """

    def prepare(world: World, tmp: Path) -> None:
        manifest = run_backup(world.chains[engine].services, "shop")
        world.backups[f"fresh-{engine}"] = manifest.backup_id
        damage(world, engine, manifest.dump.key)
        if in_place:
            record_latest_version(world, engine, manifest.backup_id, manifest.dump.key)

    return prepare


def record_latest_version(world: World, engine: str, backup_id: str, key: str) -> None:
    catalog = world.chains[engine].services.catalog()
    client, bucket = world.seaweed.client(), world.buckets[engine]
    latest = client.head_object(Bucket=bucket, Key=key)["VersionId"]
    manifest_key = catalog.layout.manifest_key("shop", backup_id)
    raw = catalog.store.get_json(manifest_key)
    raw["objects"][0]["version_id"] = latest
    catalog.store.put_json(manifest_key, raw)


def delete_the_object(world: World, engine: str, key: str) -> None:
    client, bucket = world.seaweed.client(), world.buckets[engine]
    for version in client.list_object_versions(Bucket=bucket, Prefix=key).get("Versions", []):
        client.delete_object(Bucket=bucket, Key=key, VersionId=version["VersionId"])


def damage_the_manifest(engine: str):
    def prepare(world: World, tmp: Path) -> None:
        manifest = run_backup(world.chains[engine].services, "shop")
        world.backups[f"fresh-{engine}"] = manifest.backup_id
        catalog = world.chains[engine].services.catalog()
        key = catalog.layout.manifest_key("shop", manifest.backup_id)
        body = catalog.store.get_bytes(key)
        catalog.store.put_bytes(key, body[: len(body) // 3])  # truncated mid-JSON

    return prepare


def file_size_limit(world: World, tmp: Path) -> dict[str, str]:
    return {"FAULT_FSIZE": str(256 * 1024)}


def truncate(world: World, engine: str, key: str) -> None:
    client, bucket = world.seaweed.client(), world.buckets[engine]
    body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
    client.put_object(Bucket=bucket, Key=key, Body=body[: len(body) // 2])


def flip_a_byte(world: World, engine: str, key: str) -> None:
    client, bucket = world.seaweed.client(), world.buckets[engine]
    body = bytearray(client.get_object(Bucket=bucket, Key=key)["Body"].read())
    body[len(body) // 2] ^= 0xFF
    client.put_object(Bucket=bucket, Key=key, Body=bytes(body))


def swap_in_other_data(world: World, engine: str, key: str) -> None:
    """Replace the data with another backup's (valid age, valid zstd, the wrong dump)."""
    other = world.chains[engine].services.catalog().read_manifest("shop", world.backups[engine])
    client, bucket = world.seaweed.client(), world.buckets[engine]
    body = client.get_object(Bucket=bucket, Key=other.dump.key)["Body"].read()
    client.put_object(Bucket=bucket, Key=key, Body=body)


def write_file(name: str, text: str):
    def prepare(world: World, tmp: Path) -> None:
        (tmp / name).write_text(text)

    return prepare


def non_empty_target(engine: str, name: str):
    def prepare(world: World, tmp: Path) -> None:
        server = world.servers[f"{engine}_target"]
        if engine == "postgres":
            server.execute(f'DROP DATABASE IF EXISTS "{name}"')
            server.execute(f'CREATE DATABASE "{name}"')
            server.execute("CREATE TABLE keep_me (id int)", database=name)
        else:
            server.execute(f"DROP DATABASE IF EXISTS `{name}`")
            server.execute(f"CREATE DATABASE `{name}`")
            server.execute("CREATE TABLE keep_me (id int)", database=name)

    return prepare


def empty_bin_dir(world: World, tmp: Path) -> dict[str, str]:
    (tmp / "bin").mkdir()
    return {"RESTORABLE_PG_BINDIR": str(tmp / "bin")}


def lock_against_unlocked_bucket(world: World, tmp: Path) -> dict[str, str]:
    name = f"nolock-matrix-{os.getpid()}"
    if name not in world.seaweed.bucket_names():
        world.seaweed.create_bucket(name, object_lock=False)
    config = world.chains["postgres"].config_path.read_text()
    patched = tmp / "locked.yaml"
    import yaml

    data = yaml.safe_load(config)
    data["storage"]["bucket"] = name
    data["storage"]["object_lock"] = {"mode": "GOVERNANCE", "days": 1}
    patched.write_text(yaml.safe_dump(data))
    return {"FAULT_CONFIG": str(patched)}


P, M = "postgres", "mysql"
BACKUP = ["backup", "shop"]


def restore_into(database: str, backup: str = "{backup}", *extra: str) -> list[str]:
    return ["restore", "shop", backup, "--target", "tgt", "--database", database, *extra]


LONG_PG = "r" * 64  # 64 bytes: PostgreSQL keeps 63
LONG_MY = "r" * 65  # 65 characters: MariaDB keeps 64

FAULTS = [
    # -- the source ------------------------------------------------------------------------
    Fault("pg source port closed", P, BACKUP, 3, "cannot connect", override(P, "src", port=free_port())),
    Fault("pg wrong password", P, BACKUP, 3, "refused the credentials", override(P, "src", password="x")),
    Fault("pg database absent", P, BACKUP, 8, "does not exist", override(P, "src", schema="no_such_db")),
    Fault("pg_dump not found", P, BACKUP, 4, "pg_dump not found", empty_bin_dir),
    Fault("mysql source port closed", M, BACKUP, 3, "", override(M, "src", port=free_port())),
    Fault("mysql wrong password", M, BACKUP, 3, "refused the credentials", override(M, "src", password="x")),
    Fault("mysql database absent", M, BACKUP, 8, "does not exist", override(M, "src", schema="no_such")),
    # -- the bucket ------------------------------------------------------------------------
    Fault("s3 endpoint down", P, BACKUP, 5, "", s3_extra(P, endpoint_url=f"http://127.0.0.1:{free_port()}")),
    Fault("s3 wrong secret", M, BACKUP, 5, "", override(M, "restorable_s3", password="wrong-secret")),
    Fault(
        "object lock on a bucket without it",
        P,
        BACKUP,
        2,
        "has no Object Lock",
        lock_against_unlocked_bucket,
    ),
    # -- the config and the command line ----------------------------------------------------
    Fault("config file missing", P, ["--config", "{tmp}/absent.yaml", "list"], 2, "does not exist", use_config=False),
    Fault(
        "config not YAML",
        P,
        ["--config", "{tmp}/bad.yaml", "list"],
        2,
        "not valid YAML",
        write_file("bad.yaml", "storage: [unclosed\n"),
        use_config=False,
    ),
    Fault("unknown database", P, ["backup", "nosuchdb"], 2, "no database with id 'nosuchdb'"),
    Fault(
        "keygen onto an existing file", P, ["keygen", "{tmp}/exists.txt"], 2, "exists", write_file("exists.txt", "x")
    ),
    Fault(
        "target URL with a password",
        P,
        ["restore", "shop", "latest", "--target", "postgres://u:hunter2@127.0.0.1/x", "--database", "x"],
        2,
        "password",
    ),
    # -- keys ------------------------------------------------------------------------------
    Fault(
        "wrong identity",
        P,
        [
            "restore",
            "shop",
            "{backup}",
            "--target",
            "tgt",
            "--database",
            "wrong_key",
            "--identity-file",
            "{tmp}/key.txt",
        ],
        6,
        "does not match any recipient",
        wrong_identity,
        not_left="wrong_key",
    ),
    Fault(
        "identity file without a key",
        M,
        ["verify", "shop", "{backup}", "--deep", "--identity-file", "{tmp}/key.txt"],
        2,
        "AGE-SECRET-KEY",
        identity_file("# nothing here\n"),
    ),
    # -- where a restore may write ---------------------------------------------------------
    Fault(
        "pg target not empty",
        P,
        restore_into("full_target"),
        7,
        "not empty",
        non_empty_target(P, "full_target"),
    ),
    Fault(
        "mysql target not empty",
        M,
        restore_into("full_target"),
        7,
        "not empty",
        non_empty_target(M, "full_target"),
    ),
    Fault("pg template target", P, restore_into("template1"), 7, ""),
    Fault("pg name too long", P, restore_into(LONG_PG), 7, "63"),
    Fault("mysql name too long", M, restore_into(LONG_MY), 7, "64"),
    Fault("mysql system target", M, restore_into("mysql"), 7, ""),
    Fault("pg drill onto the source", P, ["drill", "shop", "{backup}", "--target", "src"], 7, "source"),
    Fault("mysql drill onto the source", M, ["drill", "shop", "{backup}", "--target", "src"], 7, "source"),
    Fault(
        "unknown backup id",
        M,
        restore_into("n", "20200101T000000Z-00000000"),
        8,
        "",
    ),
    # -- the stored bytes ------------------------------------------------------------------
    Fault("pg data truncated", P, ["verify", "shop", "{fresh}"], 6, "sha256", fresh_backup_with(truncate, P)),
    Fault("mysql data truncated", M, ["verify", "shop", "{fresh}", "--deep"], 6, "", fresh_backup_with(truncate, M)),
    Fault("pg one byte flipped", P, ["verify", "shop", "{fresh}", "--deep"], 6, "", fresh_backup_with(flip_a_byte, P)),
    Fault(
        "mysql newer version over the recorded one",
        M,
        ["verify", "shop", "{fresh}"],
        6,
        "newer version",
        fresh_backup_with(flip_a_byte, M, in_place=False),
    ),
    Fault(
        "pg data object deleted",
        P,
        ["verify", "shop", "{fresh}"],
        6,
        "",
        fresh_backup_with(delete_the_object, P, in_place=False),
    ),
    Fault("pg manifest truncated", P, ["verify", "shop", "{fresh}"], 6, "manifest", damage_the_manifest(P)),
    Fault(
        "pg spool hits the file size limit",
        P,
        restore_into("spool_limit", "{backup}", "--jobs", "2"),
        1,
        "file",
        file_size_limit,
        not_left="spool_limit",
    ),
    Fault(
        "pg data swapped for another backup's",
        P,
        restore_into("swapped_pg", "{fresh}"),
        6,
        "sha256",
        fresh_backup_with(swap_in_other_data, P),
        not_left="swapped_pg",
    ),
    Fault(
        "mysql data swapped for another backup's",
        M,
        restore_into("swapped_my", "{fresh}"),
        6,
        "sha256",
        fresh_backup_with(swap_in_other_data, M),
        not_left="swapped_my",
    ),
]


@pytest.fixture(scope="module")
def world(
    tmp_path_factory, pg_server, _pg_sample_template, pg_target_server, mariadb_server, mariadb_target_server, seaweed
):
    from devstack.sample_mariadb import create_sample_database

    tmp = tmp_path_factory.mktemp("faults")
    buckets = {P: f"faults-pg-{os.getpid()}", M: f"faults-my-{os.getpid()}"}
    for name in buckets.values():
        seaweed.create_bucket(name, object_lock=True, versioning=True)
    (tmp / "pg").mkdir()
    (tmp / "my").mkdir()
    pg_source = pg_server.create_database("fault_matrix", template=_pg_sample_template)
    my_source = mariadb_server.connection("fault_matrix")
    create_sample_database(my_source, scale_mb=1.0, seed=3)
    chains = {
        P: make_chain(
            tmp / "pg",
            source=pg_source,
            engine=P,
            s3=seaweed.connection(),
            bucket=buckets[P],
            target=pg_target_server.connection("postgres"),
        ),
        M: make_chain(
            tmp / "my",
            source=my_source,
            engine=M,
            s3=seaweed.connection(),
            bucket=buckets[M],
            target=mariadb_target_server.connection("mysql"),
        ),
    }
    world = World(
        chains,
        seaweed,
        buckets,
        {"postgres_target": pg_target_server, "mysql_target": mariadb_target_server},
        tmp,
    )
    for engine, chain in chains.items():
        world.backups[engine] = run_backup(chain.services, "shop").backup_id
    yield world
    pg_server.drop_database("fault_matrix")
    mariadb_server.drop_database("fault_matrix")
    for name in buckets.values():
        seaweed.delete_bucket(name)


def committed(world: World) -> set[str]:
    """Every manifest in both buckets."""
    found = set()
    for chain in world.chains.values():
        layout, store = chain.services.catalog().layout, chain.services.store()
        found |= {o.key for o in store.list_objects("") if layout.parse(o.key).kind is KeyKind.MANIFEST}
    return found


def database_exists(world: World, engine: str, name: str) -> bool:
    server = world.servers[f"{engine}_target"]
    if engine == P:
        return bool(server.query("SELECT 1 FROM pg_database WHERE datname = %s", (name,)))
    return bool(server.query("SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s", (name,)))


@pytest.mark.parametrize("fault", FAULTS, ids=[f.name for f in FAULTS])
def test_every_fault_is_detected_named_classified_and_leaves_nothing(world, fault, tmp_path):
    chain = world.chains[fault.engine]
    spool = tmp_path / "tmp"
    spool.mkdir()
    env = {"TMPDIR": str(spool), **(fault.prepare(world, tmp_path) or {})}
    before = committed(world)
    args = [
        a.replace("{tmp}", str(tmp_path))
        .replace("{backup}", world.backups[fault.engine])
        .replace("{fresh}", world.backups.get(f"fresh-{fault.engine}", ""))
        for a in fault.args
    ]
    fsize = int(env.pop("FAULT_FSIZE", "0"))
    if "FAULT_CONFIG" in env:
        args = ["--config", env.pop("FAULT_CONFIG"), *args]
        fault = dataclasses.replace(fault, use_config=False)
    result = run(chain, args, env, use_config=fault.use_config, fsize=fsize)
    output = result.stdout + result.stderr

    assert result.returncode == fault.exit_code, output
    assert "Traceback" not in output
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("restorable: error: "), result.stderr
    assert fault.message.lower() in last.lower(), last
    for secret in world.secrets(fault.engine):
        assert secret not in output
    assert committed(world) == before, "a failing command committed a backup"
    assert list(spool.iterdir()) == [], "temporary files left behind"
    if fault.not_left:
        assert not database_exists(world, fault.engine, fault.not_left)


def run(chain: Chain, args: list[str], env: dict[str, str], *, use_config: bool, fsize: int = 0):
    import resource
    import subprocess
    import sys

    def limit_file_size() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))

    prefix = ["--config", str(chain.config_path)] if use_config else []
    return subprocess.run(
        [sys.executable, "-m", "restorable.cli", *prefix, *args],
        capture_output=True,
        text=True,
        env={**os.environ, **chain.env, **env},
        timeout=300,
        preexec_fn=limit_file_size if fsize else None,
    )


def test_the_matrix_holds_at_least_25_distinct_faults_across_both_engines():
    assert len({f.name for f in FAULTS}) == len(FAULTS) >= 25
    assert {f.engine for f in FAULTS} == {P, M}
    assert {f.exit_code for f in FAULTS} >= {2, 3, 4, 5, 6, 7, 8}  # every documented failure code
