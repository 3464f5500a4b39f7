"""Each kind of config mistake gets a message that names the file, the entry and the field."""

from pathlib import Path

import pytest
import yaml

from restorable.config import load_config, parse_config
from restorable.exceptions import ConfigError

RECIPIENT = "age1qyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqs3290gq"


def base() -> dict:
    return {
        "storage": {"conn_id": "restorable_s3", "bucket": "backups", "prefix": "restorable"},
        "encryption": {"recipients": [RECIPIENT], "identity_conn_id": "restorable_age"},
        "databases": [
            {
                "id": "shop",
                "engine": "postgres",
                "conn_id": "shop_pg",
                "schedule": "0 2 * * *",
                "restore_target_conn_id": "drill_pg",
            }
        ],
    }


def error_for(data: dict, environ: dict | None = None) -> str:
    """The message a mistake gives: raised for a file-wide section, kept aside for one database entry."""
    try:
        config = parse_config(data, Path("include/restorable.yaml"), environ or {})
    except ConfigError as exc:
        return str(exc)
    assert len(config.broken) == 1, f"expected one error, got {config.broken}"
    (error,) = config.broken.values()
    return str(error)


def test_one_broken_entry_leaves_the_others_usable_and_names_itself():
    data = base()
    data["databases"].append({"id": "crm", "engine": "postgres", "conn_id": "crm_pg", "schedul": "@daily"})
    data["databases"].append({"id": "Bad Id", "engine": "postgres", "conn_id": "x"})
    config = parse_config(data, Path("include/restorable.yaml"), {})
    assert list(config.databases) == ["shop"]
    assert sorted(config.broken) == ["crm", "databases_2"]
    assert "databases[crm]" in str(config.broken["crm"]) and "schedul" in str(config.broken["crm"])
    with pytest.raises(ConfigError, match="schedul"):
        config.database("crm")  # the CLI names the real mistake, not "no database crm"
    assert config.database("shop").conn_id == "shop_pg"


def test_the_issue_example_is_accepted():
    config = parse_config(base(), Path("x.yaml"), {})
    shop = config.database("shop")
    assert shop.engine == "postgres" and shop.restore_target_conn_id == "drill_pg"
    assert config.storage.part_size == 16 * 1024 * 1024
    assert config.encryption.recipients == (RECIPIENT,)


def test_shipped_config_loads():
    config = load_config(
        Path(__file__).parents[2] / "include" / "restorable.yaml", {"RESTORABLE_AGE_RECIPIENT": RECIPIENT}
    )
    assert {"shop", "shopdb"} <= set(config.databases)


def test_missing_required_field_is_named():
    data = base()
    del data["databases"][0]["conn_id"]
    msg = error_for(data)
    assert "include/restorable.yaml" in msg and "databases[shop].conn_id" in msg and "required" in msg


def test_unknown_engine_is_named():
    data = base()
    data["databases"][0]["engine"] = "oracle"
    msg = error_for(data)
    assert "databases[shop].engine" in msg and "oracle" in msg


def test_misspelt_field_is_reported_not_ignored():
    data = base()
    data["databases"][0]["shedule"] = "0 2 * * *"
    msg = error_for(data)
    assert "databases[shop]" in msg and "shedule" in msg


def test_bad_schedule_is_named():
    data = base()
    data["databases"][0]["schedule"] = "every night"
    assert "databases[shop].schedule" in error_for(data)


def test_drill_target_must_not_be_the_source():
    data = base()
    data["databases"][0]["restore_target_conn_id"] = "shop_pg"
    msg = error_for(data)
    assert "restore_target_conn_id" in msg and "isolated" in msg


def test_private_key_in_recipients_is_refused():
    data = base()
    data["encryption"]["recipients"] = ["AGE-SECRET-KEY-1QQQQ"]
    msg = error_for(data)
    assert "encryption.recipients[0]" in msg and "private" in msg


def test_malformed_recipient_is_named():
    data = base()
    data["encryption"]["recipients"] = ["age1notakey"]
    assert "encryption.recipients[0]" in error_for(data)


def test_part_size_below_s3_minimum():
    data = base()
    data["storage"]["part_size"] = "1MiB"
    msg = error_for(data)
    assert "storage.part_size" in msg and "5 MiB" in msg


def test_part_size_not_a_size():
    data = base()
    data["storage"]["part_size"] = "big"
    assert "storage.part_size" in error_for(data)


def test_bad_bucket_name():
    data = base()
    data["storage"]["bucket"] = "My_Bucket"
    assert "storage.bucket" in error_for(data)


def test_object_lock_mode():
    data = base()
    data["storage"]["object_lock"] = {"mode": "forever", "days": 3}
    assert "storage.object_lock.mode" in error_for(data)


def test_duplicate_database_ids():
    data = base()
    data["databases"].append(dict(data["databases"][0]))
    assert "used twice" in error_for(data)
    config = parse_config(data, Path("x.yaml"), {})
    assert list(config.databases) == ["shop"] and list(config.broken) == ["databases_1"]


def test_invalid_database_id():
    data = base()
    data["databases"][0]["id"] = "Shop-Prod"
    assert "databases[0].id" in error_for(data)


def test_compression_level_out_of_range():
    data = base()
    data["databases"][0]["compression"] = {"level": 40}
    msg = error_for(data)
    assert "databases[shop].compression.level" in msg and "between 1 and 19" in msg


def test_unset_environment_variable_is_named():
    data = base()
    data["encryption"]["recipients"] = ["${NO_SUCH_VAR}"]
    msg = error_for(data)
    assert "encryption.recipients[0]" in msg and "NO_SUCH_VAR" in msg


def test_environment_variable_is_expanded():
    data = base()
    data["encryption"]["recipients"] = ["${DEMO_KEY}"]
    config = parse_config(data, Path("x.yaml"), {"DEMO_KEY": RECIPIENT})
    assert config.encryption.recipients == (RECIPIENT,)


def test_not_yaml(tmp_path):
    path = tmp_path / "restorable.yaml"
    path.write_text("storage: [unclosed\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, {})
    assert str(path) in str(info.value) and "line" in str(info.value)


def test_missing_file_says_how_to_point_at_one(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "nope.yaml", {})
    assert "--config" in str(info.value)


def test_wrong_type_is_named():
    data = base()
    data["storage"]["max_in_flight"] = "many"
    assert "storage.max_in_flight" in error_for(data)


def test_unknown_database_lookup_lists_known():
    config = parse_config(base(), Path("x.yaml"), {})
    with pytest.raises(ConfigError) as info:
        config.database("shpo")
    assert "shop" in str(info.value)


def test_config_round_trips_through_yaml():
    text = yaml.safe_dump(base())
    assert parse_config(yaml.safe_load(text), Path("x.yaml"), {}).databases["shop"].conn_id == "shop_pg"


def test_bad_retention_field_is_named():
    data = base()
    data["databases"][0]["retention"] = {"keep_daily": "seven"}
    msg = error_for(data)
    assert "databases[shop].retention" in msg and "keep_daily" in msg


def test_object_lock_of_a_database_policy_wins_over_the_storage_default():
    data = base()
    data["storage"]["object_lock"] = {"mode": "GOVERNANCE", "days": 7}
    data["databases"].append(
        {
            "id": "ledger",
            "engine": "postgres",
            "conn_id": "ledger_pg",
            "retention": {"keep_last": 3, "object_lock": {"mode": "COMPLIANCE", "days": 400}},
        }
    )
    config = parse_config(data, Path("x.yaml"), {})
    assert config.object_lock_for("ledger") == ("COMPLIANCE", 400)
    assert config.object_lock_for("shop") == ("GOVERNANCE", 7)
    del data["storage"]["object_lock"]
    assert parse_config(data, Path("x.yaml"), {}).object_lock_for("shop") is None


def test_orphan_min_age_shorter_than_the_backup_timeout_is_refused():
    data = {**base(), "lifecycle": {"orphan_min_age": "1h"}}
    message = error_for(data)
    assert "lifecycle.orphan_min_age" in message and "execution timeout" in message and "12h" in message
    assert "not a duration" in error_for({**base(), "lifecycle": {"orphan_min_age": "soon"}})
    parse_config({**base(), "lifecycle": {"orphan_min_age": "12h"}}, Path("x.yaml"), {})


def test_the_drill_app_check_is_read_and_its_mistakes_named():
    data = base()
    data["databases"][0]["drill"] = {
        "app_role": "shop_app",
        "app_conn_id": "shop_app",
        "smoke_queries": ["SELECT 1 FROM sales.orders LIMIT 1", {"sql": "SELECT 1 WHERE false", "expect_rows": False}],
    }
    check = parse_config(data, Path("x.yaml"), {}).database("shop").app_check
    assert check.role == "shop_app" and check.conn_id == "shop_app"
    assert [(q.sql, q.expect_rows) for q in check.queries] == [
        ("SELECT 1 FROM sales.orders LIMIT 1", True),
        ("SELECT 1 WHERE false", False),
    ]
    data["databases"][0]["drill"] = {"app_role": "shop_app", "app_conn_id": "shop_app", "smoke_queries": []}
    assert "databases[shop].drill.smoke_queries must be a non-empty list" in error_for(data)
    data["databases"][0]["drill"] = {"app_role": "shop_app", "smoke_queries": ["SELECT 1"]}
    assert "databases[shop].drill.app_conn_id" in error_for(data)
    data["databases"][0]["drill"] = {"app_role": "a", "app_conn_id": "a", "smoke_queries": [{"sq": "x"}]}
    assert "smoke_queries[0]" in error_for(data)


# -- physical: base backups and WAL ------------------------------------------------------------
def _with_physical(tmp_path, physical, engine="postgres"):
    import yaml

    data = {
        "storage": {"conn_id": "s3", "bucket": "backups"},
        "encryption": {"recipients": ["age1" + "q" * 58], "identity_conn_id": "age"},
        "databases": [{"id": "shop", "engine": engine, "conn_id": "shop_pg", "physical": physical}],
    }
    path = tmp_path / "restorable.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_config(path, environ={})


def test_a_physical_block_reads_with_its_defaults(tmp_path):
    cfg = _with_physical(tmp_path, {"wal": {"spool_dir": "/var/spool/restorable/shop"}})
    physical = cfg.database("shop").physical
    assert physical.enabled and physical.schedule == "0 1 * * *"
    assert physical.replication_conn_id == "shop_pg" and physical.pitr_window.days == 7
    assert physical.wal.mode == "archive" and str(physical.wal.spool_dir) == "/var/spool/restorable/shop"
    assert physical.wal.slot is None and physical.wal.heartbeat_interval == 10


def test_stream_mode_names_its_slot_after_the_database(tmp_path):
    cfg = _with_physical(tmp_path, {"wal": {"mode": "stream", "spool_dir": "/s"}})
    assert cfg.database("shop").physical.wal.slot == "restorable_shop"


@pytest.mark.parametrize(
    ("physical", "engine", "message"),
    [
        ({"wal": {"spool_dir": "/s"}}, "mysql", "for PostgreSQL"),
        ({"wal": {"mode": "ship", "spool_dir": "/s"}}, "postgres", "wal.mode: 'ship'"),
        ({"wal": {"spool_dir": "spool"}}, "postgres", "not an absolute path"),
        ({"wal": {"spool_dir": "/s", "spool_alarm": "9GiB"}}, "postgres", "spool_alarm must be smaller"),
        ({"wal": {"spool_dir": "/s", "spoolmax": "1GiB"}}, "postgres", "unknown field"),
        ({"enabled": True}, "postgres", "physical.wal is required"),
    ],
)
def test_a_wrong_physical_block_is_named_and_breaks_only_its_entry(tmp_path, physical, engine, message):
    cfg = _with_physical(tmp_path, physical, engine)
    assert "shop" in cfg.broken and message in str(cfg.broken["shop"])
    assert "databases[shop].physical" in str(cfg.broken["shop"])


def test_the_monitor_block_and_the_backup_deadline_read_with_their_defaults(tmp_path):
    cfg = _with_physical(tmp_path, {"wal": {"spool_dir": "/s"}})
    db = cfg.database("shop")
    monitor = db.physical.monitor
    assert monitor.schedule == "*/5 * * * *" and monitor.rpo_objective.total_seconds() == 300
    assert monitor.max_queue_files == 64 and monitor.max_base_backup_age.total_seconds() == 26 * 3600
    assert db.backup_deadline.total_seconds() == 2 * 3600


def test_the_monitor_block_and_the_backup_deadline_are_read(tmp_path):
    monitor = {"schedule": "*/2 * * * *", "rpo_objective": "3s", "max_queue_files": 5, "max_base_backup_age": "2d"}
    data = base()
    data["databases"][0].update(backup_deadline="45m", physical={"wal": {"spool_dir": "/s"}, "monitor": monitor})
    db = parse_config(data, Path("include/restorable.yaml"), {}).database("shop")
    assert db.backup_deadline.total_seconds() == 45 * 60
    read = db.physical.monitor
    assert (read.schedule, read.rpo_objective.total_seconds(), read.max_queue_files) == ("*/2 * * * *", 3, 5)
    assert read.max_base_backup_age.days == 2


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"backup_deadline": "soon"}, "databases[shop].backup_deadline: 'soon' is not a duration"),
        ({"backup_deadline": "0s"}, "databases[shop].backup_deadline: must be longer than zero"),
        ({"monitor": {"rpo_objective": "5"}}, "physical.monitor.rpo_objective: '5' is not a duration"),
        ({"monitor": {"rpo_objective": "0m"}}, "physical.monitor.rpo_objective: must be longer than zero"),
        ({"monitor": {"max_queue_files": 0}}, "physical.monitor.max_queue_files: 0 is out of range"),
        ({"monitor": {"max_queue_files": "many"}}, "physical.monitor.max_queue_files: expected an integer"),
        ({"monitor": {"max_base_backup_age": 26}}, "physical.monitor.max_base_backup_age: expected a string, found 26"),
        ({"monitor": {"schedule": "every five minutes"}}, "physical.monitor.schedule: 'every five minutes' is not"),
        ({"monitor": {"schedule": ""}}, "physical.monitor.schedule: the monitor must run on a schedule"),
        ({"monitor": {"rpo": "5m"}}, "physical.monitor: unknown field(s) rpo"),
    ],
)
def test_a_wrong_monitor_field_or_deadline_is_named(entry, message):
    data = base()
    physical = {"wal": {"spool_dir": "/s"}}
    if "monitor" in entry:
        physical["monitor"] = entry["monitor"]
    else:
        data["databases"][0].update(entry)
    data["databases"][0]["physical"] = physical
    assert message in error_for(data)


def test_metrics_block_is_optional_and_pushes_nowhere_by_default():
    config = parse_config(base(), Path("include/restorable.yaml"), {})
    assert config.metrics.pushgateway_url is None
    assert config.metrics.job == "restorable"
    assert config.metrics.max_drill_age.days == 8


def test_metrics_block_is_read():
    data = {
        **base(),
        "metrics": {
            "pushgateway_url": "http://127.0.0.1:9091/",
            "job": "backups",
            "cache_seconds": 5,
            "max_backup_age": "2h",
        },
    }
    metrics = parse_config(data, Path("include/restorable.yaml"), {}).metrics
    assert metrics.pushgateway_url == "http://127.0.0.1:9091"
    assert (metrics.job, metrics.cache_seconds, metrics.max_backup_age.total_seconds()) == ("backups", 5, 7200)


@pytest.mark.parametrize(
    ("metrics", "named"),
    [
        ({"pushgateway_url": "ftp://gw:9091"}, "metrics.pushgateway_url: 'ftp://gw:9091' is not an http(s) URL"),
        ({"pushgateway_url": "http://u:hunter2@gw:9091"}, "metrics.pushgateway_url: the URL holds credentials"),
        ({"job": "a/b"}, "metrics.job: 'a/b' is not a job name"),
        ({"cache_seconds": -1}, "metrics.cache_seconds: -1 is out of range"),
        ({"max_drill_age": "soon"}, "metrics.max_drill_age: 'soon' is not a duration"),
        ({"pushgateway": "http://gw:9091"}, "metrics: unknown field(s) pushgateway"),
    ],
)
def test_metrics_mistakes_are_named(metrics, named):
    message = error_for({**base(), "metrics": metrics})
    assert named in message
    assert "include/restorable.yaml" in message
    assert "hunter2" not in message


def _with_binlog(tmp_path, binlog, engine="mysql"):
    data = base()
    data["databases"][0].update(engine=engine, binlog=binlog)
    return parse_config(data, Path("include/restorable.yaml"), {})


def test_a_binlog_block_reads_with_its_defaults(tmp_path):
    db = _with_binlog(tmp_path, {"spool_dir": "/var/lib/restorable/binlog/shop"}).database("shop")
    binlog = db.binlog
    assert str(binlog.spool_dir) == "/var/lib/restorable/binlog/shop" and binlog.replication_conn_id == db.conn_id
    assert (binlog.heartbeat_interval, binlog.live_interval, binlog.pitr_window.days) == (10, 5, 7)
    assert binlog.heartbeat_table == "restorable_heartbeat" and binlog.drill_schedule == "0 5 * * 0"
    assert binlog.monitor.max_queue_files == 4 and binlog.monitor.rpo_objective.total_seconds() == 300


@pytest.mark.parametrize(
    ("binlog", "engine", "message"),
    [
        ({"spool_dir": "/s"}, "postgres", "binlog archiving is for MariaDB/MySQL"),
        ({"spool_dir": "spool"}, "mysql", "not an absolute path"),
        ({"spool_dir": "/s", "live_intervall": 5}, "mysql", "unknown field"),
        ({"heartbeat_interval": 5}, "mysql", "spool_dir is required"),
        ({"spool_dir": "/s", "monitor": {"rpo_objective": "soon"}}, "mysql", "rpo_objective"),
    ],
)
def test_a_wrong_binlog_block_is_named_and_breaks_only_its_entry(tmp_path, binlog, engine, message):
    cfg = _with_binlog(tmp_path, binlog, engine)
    assert "shop" in cfg.broken and message in str(cfg.broken["shop"]), cfg.broken
    assert "databases[shop].binlog" in str(cfg.broken["shop"])
