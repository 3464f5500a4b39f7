"""What the transit client decides without a server: its address, a ciphertext's key version, a damaged key object."""

import pytest

from restorable.connections import ConnectionInfo
from restorable.exceptions import ConfigError, IntegrityError, KeyServiceError
from restorable.keys.envelope import KeyRecord
from restorable.keys.transit import TransitKms, ciphertext_version


def kms(**fields) -> TransitKms:
    return TransitKms(ConnectionInfo("kms", "vault", **fields), mount="transit", key="restorable")


def test_address_from_a_url_or_a_host_and_port():
    assert kms(host="http://127.0.0.1:8200", password="t").url == "http://127.0.0.1:8200"
    assert kms(host="bao.internal", port=8200, password="t").url == "https://bao.internal:8200"
    assert kms(host="bao", port=8200, password="t", extra={"use_tls": False}).url == "http://bao:8200"


def test_a_connection_without_token_or_host_is_named():
    with pytest.raises(ConfigError, match="'kms' has no token"):
        kms(host="http://x:1")
    with pytest.raises(ConfigError, match="'kms' has no host"):
        kms(password="t")


def test_the_token_is_not_in_the_repr():
    assert "s.secret" not in repr(kms(host="http://x:1", password="s.secret"))


def test_ciphertext_version():
    assert ciphertext_version("vault:v12:abc") == 12
    with pytest.raises(KeyServiceError):
        ciphertext_version("AGE-SECRET-KEY-1...")


def test_a_damaged_key_object_is_an_integrity_error_naming_it():
    with pytest.raises(IntegrityError, match="key object p/k.json is damaged"):
        KeyRecord.parse("p/k.json", b'{"format": "restorable.key/1"}')
