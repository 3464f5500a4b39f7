"""``storage.copies`` is validated at load: each mistake names the copy and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from restorable.config import parse_config
from restorable.exceptions import ConfigError

RECIPIENT = "age1qyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqs3290gq"


def config(copies):
    data = {
        "storage": {"conn_id": "s3", "bucket": "backups", "copies": copies},
        "encryption": {"recipients": [RECIPIENT]},
        "databases": [{"id": "shop", "engine": "postgres", "conn_id": "shop_db", "schedule": None}],
    }
    return parse_config(data, Path("restorable.yaml"), {"EU_BUCKET": "backups-eu"})


def test_a_full_entry_and_the_defaults():
    (eu, us) = config(
        [
            {
                "name": "eu_west",
                "conn_id": "s3_eu",
                "bucket": "${EU_BUCKET}",
                "prefix": "/copies/",
                "object_lock": {"mode": "compliance", "days": 30},
                "storage_class": "standard_ia",
                "restore_conn_id": "s3_eu_reader",
                "lifecycle_conn_id": "s3_eu_lifecycle",
            },
            {"name": "us", "conn_id": "s3_us", "bucket": "backups-us"},
        ]
    ).storage.copies
    assert (eu.bucket, eu.prefix, eu.lock_mode, eu.lock_days, eu.storage_class) == (
        "backups-eu",
        "copies",
        "COMPLIANCE",
        30,
        "STANDARD_IA",
    )
    assert (eu.restore_conn_id, eu.lifecycle_conn_id) == ("s3_eu_reader", "s3_eu_lifecycle")
    # The primary's prefix by default; no lock, no class, every duty on conn_id.
    assert (us.prefix, us.lock_mode, us.storage_class, us.restore_conn_id) == ("restorable", None, None, None)
    assert config(None).storage.copies == ()
    # The same bucket name through another connection may be another provider's bucket.
    assert config([{"name": "wasabi", "conn_id": "s3_wasabi", "bucket": "backups"}]).storage.copies[0].bucket


@pytest.mark.parametrize(
    ("copies", "message"),
    [
        ({"name": "x"}, "storage.copies: expected a list"),
        ([{"name": "EU", "conn_id": "c", "bucket": "b-eu"}], "storage.copies[EU].name: 'EU' is not a copy name"),
        ([{"name": "eu", "bucket": "b-eu"}], "storage.copies[eu].conn_id is required"),
        ([{"name": "eu", "conn_id": "c", "bucket": "B_EU"}], "storage.copies[eu].bucket: 'B_EU' is not a valid"),
        ([{"name": "eu", "conn_id": "s3", "bucket": "backups"}], "is the primary storage itself"),
        (
            [{"name": "eu", "conn_id": "c", "bucket": "b-eu", "object_lock": {"mode": "STRICT", "days": 3}}],
            "storage.copies[eu].object_lock.mode: 'STRICT' must be GOVERNANCE or COMPLIANCE",
        ),
        (
            [{"name": "eu", "conn_id": "c", "bucket": "b-eu", "object_lock": {"days": 0}}],
            "storage.copies[eu].object_lock.days: 0 is out of range",
        ),
        (
            [{"name": "eu", "conn_id": "c", "bucket": "b-eu", "storage_class": "DEEP_ARCHIVE"}],
            "storage.copies[eu].storage_class: 'DEEP_ARCHIVE' is not a storage class",
        ),
        (
            [{"name": "eu", "conn_id": "c", "bucket": "b-eu", "region": "x"}],
            "storage.copies[eu]: unknown field(s) region",
        ),
        (
            [{"name": "eu", "conn_id": "c", "bucket": "b-eu"}, {"name": "eu", "conn_id": "d", "bucket": "b-us"}],
            "'eu' is used twice",
        ),
        (
            [{"name": "eu", "conn_id": "c", "bucket": "b-eu"}, {"name": "us", "conn_id": "d", "bucket": "b-eu"}],
            "is already copy 'eu'",
        ),
    ],
)
def test_mistakes_name_the_copy_and_the_field(copies, message):
    with pytest.raises(ConfigError) as raised:
        config(copies)
    assert message in str(raised.value)
    assert "restorable.yaml: storage.copies" in str(raised.value)
