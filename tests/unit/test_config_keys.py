"""``encryption.envelope``: accepted as documented, each mistake named."""

from datetime import timedelta
from pathlib import Path

import pytest

from restorable.config import parse_config
from restorable.exceptions import ConfigError
from tests.unit.test_config import base

ENVELOPE = {
    "kms": "openbao_transit",
    "key": "restorable",
    "encrypt_conn_id": "restorable_kms_backup",
    "decrypt_conn_id": "restorable_kms_restore",
}


def parsed(envelope: dict):
    data = base()
    data["encryption"]["envelope"] = envelope
    return parse_config(data, Path("include/restorable.yaml"), {}).encryption


def test_without_the_block_backups_use_static_recipients():
    assert parse_config(base(), Path("x.yaml"), {}).encryption.envelope is None


def test_envelope_defaults():
    envelope = parsed(dict(ENVELOPE)).envelope
    assert envelope.mount == "transit" and envelope.rotation_period == timedelta(days=365)
    assert envelope.rotate_conn_id == "restorable_kms_restore"  # rewrap proves itself by decrypting


@pytest.mark.parametrize(
    "change, message",
    [
        ({"kms": "rot13"}, "encryption.envelope.kms: 'rot13' is not a KMS"),
        ({"key": None}, "encryption.envelope.key is required"),
        ({"decrypt_conn_id": "restorable_kms_backup"}, "encrypt_conn_id and decrypt_conn_id are the same"),
        ({"rotation_period": "0d"}, "rotation_period: must be longer than zero"),
        ({"key": "a/b"}, "encryption.envelope.key: 'a/b' is not a key or mount name"),
        ({"kms_key": "x"}, "unknown field(s) kms_key"),
    ],
)
def test_mistakes_are_named(change, message):
    with pytest.raises(ConfigError) as info:
        parsed({**ENVELOPE, **change})
    assert message in str(info.value) and "include/restorable.yaml" in str(info.value)


def test_aws_kms_takes_an_alias_arn_or_key_id():
    for key in ("alias/restorable", "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"):
        assert parsed({**ENVELOPE, "kms": "aws_kms", "key": key}).envelope.key == key
    with pytest.raises(ConfigError, match="is not an AWS KMS key"):
        parsed({**ENVELOPE, "kms": "aws_kms", "key": "restorable"})
