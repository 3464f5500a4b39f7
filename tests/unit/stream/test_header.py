"""The key-less age header check behind ``verify`` and ``audit-encryption``."""

import pyrage
import zstandard
from pyrage import passphrase, x25519

from restorable.stream.header import header_problems, read_header


def _age(count: int, data: bytes = b"payload") -> bytes:
    return pyrage.encrypt(data, [x25519.Identity.generate().to_public() for _ in range(count)])


def test_counts_x25519_stanzas_and_sets_grease_apart():
    header = read_header(_age(3))
    assert header.is_age and header.problem is None
    assert header.x25519 == 3 and not header.other  # rage's random grease stanza is not a recipient
    assert header_problems("k", _age(3), 3) == []


def test_a_recipient_count_other_than_the_manifest_is_a_problem():
    (problem,) = header_problems("k", _age(1), 2)
    assert "encrypted to 1 X25519 recipient(s), the manifest records 2" in problem


def test_plaintext_is_not_age_whatever_its_name_or_compression():
    for plain in (b"PGDMP\x01\x0e", zstandard.compress(b"-- MariaDB dump"), b"", b"age-encryption.org/v2\n"):
        (problem,) = header_problems("shop/x/data.pgdump.zst.age", plain, None)
        assert "is not age ciphertext: it does not start with the age header" in problem


def test_a_passphrase_stanza_is_named():
    scrypt = passphrase.encrypt(b"x", "correct horse")
    assert read_header(scrypt).other == ("scrypt",)
    assert "stanzas of type scrypt" in header_problems("k", scrypt, None)[0]


def test_a_header_cut_before_its_end_is_a_problem():
    head = _age(2)[:60]
    assert read_header(head).problem and header_problems("k", head, 2)
