"""The one-pass stream: sha256 → zstd → age → sha256, and back (with pyrage and with the age CLI).

Also proves the documented restore-by-hand path: `age -d -i key.txt | zstd -d` gives the dump back.
"""

from __future__ import annotations

import hashlib
import io
import os
import random
import shutil
import subprocess
from pathlib import Path

import pyrage
import pytest
import zstandard
from pyrage import x25519

from restorable.exceptions import ConfigError, DecryptionError, IntegrityError
from restorable.stream import decode_stream, encode_stream, generate_identity, recipient_of
from restorable.stream.keys import parse_identity, parse_recipients

DECRYPTORS = [pytest.param(False, id="pyrage"), pytest.param(True, id="age-cli")]


def _compressible(size: int, seed: int = 7) -> bytes:
    """Dump-like text rows: compressible, but not trivially."""
    rnd = random.Random(seed)
    words = ["alpha", "beta", "gamma", "delta", "omega", "sigma", "kappa"]
    out = io.StringIO()
    n = 0
    while out.tell() < size:
        n += 1
        out.write(f"{n}\t{rnd.randrange(10**9)}\t{rnd.choice(words)} {rnd.choice(words)}\t{rnd.random():.6f}\n")
    return out.getvalue().encode()[:size]


def _mixed(size: int) -> bytes:
    half = size // 2
    return os.urandom(half) + _compressible(size - half)


class _Sink:
    def __init__(self) -> None:
        self.buf = io.BytesIO()
        self.writes = 0

    def write(self, data: bytes) -> int:
        self.writes += 1
        return self.buf.write(data)

    def getvalue(self) -> bytes:
        return self.buf.getvalue()


class _TrickleReader:
    """Returns short reads of odd sizes, as a pipe from a dump process can."""

    def __init__(self, data: bytes, sizes: list[int]) -> None:
        self._buf = io.BytesIO(data)
        self._sizes = sizes
        self._i = 0

    def read(self, n: int = -1) -> bytes:
        size = self._sizes[self._i % len(self._sizes)]
        self._i += 1
        return self._buf.read(min(n, size) if n >= 0 else size)


@pytest.fixture(scope="module")
def keypair() -> tuple[str, str]:
    return generate_identity()


def _encode(data: bytes, recipients: list[str], **kw) -> tuple[bytes, object]:
    sink = _Sink()
    digests = encode_stream(io.BytesIO(data), sink, recipients=recipients, **kw)
    return sink.getvalue(), digests


# -- round trips ---------------------------------------------------------------------------
@pytest.mark.parametrize("use_cli", DECRYPTORS)
@pytest.mark.parametrize(
    "size",
    [0, 1, (1 << 16) - 1, 1 << 16, (1 << 16) + 1, (1 << 20) + 12345, 3 * (1 << 20) + 7],
)
def test_round_trip_across_chunk_boundaries(size: int, use_cli: bool, keypair) -> None:
    secret, public = keypair
    data = _mixed(size)
    stored, enc = _encode(data, [public], read_size=1 << 16)
    out = _Sink()
    dec = decode_stream(io.BytesIO(stored), out, identity=secret, use_age_cli=use_cli)

    assert out.getvalue() == data
    assert enc.plain_bytes == dec.plain_bytes == len(data)
    assert enc.stored_bytes == dec.stored_bytes == len(stored)
    assert enc.plain_sha256 == dec.plain_sha256 == hashlib.sha256(data).hexdigest()
    assert enc.stored_sha256 == dec.stored_sha256 == hashlib.sha256(stored).hexdigest()
    assert stored.startswith(b"age-encryption.org/v1\n")


def test_short_uneven_reads_and_progress(keypair) -> None:
    secret, public = keypair
    data = _compressible(2_500_000)
    seen: list[int] = []
    sink = _Sink()
    digests = encode_stream(
        _TrickleReader(data, [1, 4095, 70_001, 3]),
        sink,
        recipients=[public],
        read_size=100_000,
        on_progress=seen.append,
    )
    assert digests.plain_bytes == len(data)
    assert seen == sorted(seen) and seen[-1] == len(data)
    out = _Sink()
    decode_stream(io.BytesIO(sink.getvalue()), out, identity=secret, use_age_cli=False)
    assert out.getvalue() == data


@pytest.mark.parametrize("level,threads", [(1, 0), (3, 2), (6, 1)])
def test_levels_and_threads_compress_and_round_trip(level: int, threads: int, keypair) -> None:
    secret, public = keypair
    data = _compressible(1_500_000)
    stored, digests = _encode(data, [public], level=level, threads=threads)
    assert digests.stored_bytes < len(data) / 2  # it really compressed
    out = _Sink()
    decode_stream(io.BytesIO(stored), out, identity=secret)
    assert out.getvalue() == data


@pytest.mark.parametrize("use_cli", DECRYPTORS)
def test_every_recipient_can_decrypt(use_cli: bool) -> None:
    pairs = [generate_identity() for _ in range(3)]
    data = _mixed(300_000)
    stored, _ = _encode(data, [public for _, public in pairs])
    for secret, _ in pairs:
        out = _Sink()
        decode_stream(io.BytesIO(stored), out, identity=secret, use_age_cli=use_cli)
        assert out.getvalue() == data


def test_stored_stream_is_one_zstd_frame_with_a_checksum(keypair) -> None:
    secret, public = keypair
    stored, _ = _encode(b"x" * 1000, [public])
    compressed = pyrage.decrypt(stored, [x25519.Identity.from_str(secret)])
    assert zstandard.get_frame_parameters(compressed).has_checksum
    assert zstandard.ZstdDecompressor().decompress(compressed, max_output_size=10_000) == b"x" * 1000


# -- keys ----------------------------------------------------------------------------------
def test_generated_identity_matches_its_recipient() -> None:
    secret, public = generate_identity()
    assert secret.startswith("AGE-SECRET-KEY-1") and public.startswith("age1")
    assert recipient_of(secret) == public
    key_file = f"# created: today\n# public key: {public}\n{secret}\n"
    assert recipient_of(key_file) == public


def test_identity_errors_do_not_show_the_secret() -> None:
    secret, _ = generate_identity()
    broken = secret[:-3] + "QQQ"
    with pytest.raises(ConfigError) as info:
        parse_identity(broken)
    assert broken not in str(info.value)
    with pytest.raises(ConfigError):
        parse_identity("not a key")


@pytest.mark.parametrize(
    "bad",
    [
        "age1notavalidkey",
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl",
        "",
    ],
)
def test_bad_recipient_is_named(bad: str, keypair) -> None:
    _, public = keypair
    with pytest.raises(ConfigError) as info:
        encode_stream(io.BytesIO(b"data"), _Sink(), recipients=[public, bad])
    assert repr(bad) in str(info.value)


def test_secret_key_given_as_recipient_is_refused_without_echo(keypair) -> None:
    secret, _ = keypair
    with pytest.raises(ConfigError) as info:
        parse_recipients([secret])
    assert "secret" in str(info.value)
    assert secret not in str(info.value)


def test_no_recipients_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        encode_stream(io.BytesIO(b"data"), _Sink(), recipients=[])


# -- failures ------------------------------------------------------------------------------
@pytest.mark.parametrize("use_cli", DECRYPTORS)
def test_wrong_identity_raises_and_writes_nothing(use_cli: bool, keypair) -> None:
    _, public = keypair
    stored, _ = _encode(_mixed(500_000), [public])
    other_secret, _ = generate_identity()
    out = _Sink()
    with pytest.raises(DecryptionError) as info:
        decode_stream(io.BytesIO(stored), out, identity=other_secret, use_age_cli=use_cli)
    assert "does not match any recipient of this backup" in str(info.value)
    assert other_secret not in str(info.value)
    assert out.writes == 0


@pytest.mark.parametrize("use_cli", DECRYPTORS)
@pytest.mark.parametrize("where", ["header", "middle", "last"])
def test_flipped_byte_is_detected(where: str, use_cli: bool, keypair) -> None:
    secret, public = keypair
    stored, _ = _encode(_mixed(400_000), [public])
    damaged = bytearray(stored)
    index = {"header": 60, "middle": len(stored) // 2, "last": len(stored) - 5}[where]
    damaged[index] ^= 0x01
    with pytest.raises(IntegrityError):
        decode_stream(io.BytesIO(bytes(damaged)), _Sink(), identity=secret, use_age_cli=use_cli)


@pytest.mark.parametrize("use_cli", DECRYPTORS)
def test_truncated_stream_is_detected(use_cli: bool, keypair) -> None:
    secret, public = keypair
    stored, _ = _encode(_mixed(400_000), [public])
    with pytest.raises(IntegrityError):
        decode_stream(io.BytesIO(stored[: len(stored) - 1000]), _Sink(), identity=secret, use_age_cli=use_cli)


@pytest.mark.parametrize("use_cli", DECRYPTORS)
def test_not_an_age_file_is_an_integrity_error(use_cli: bool, keypair) -> None:
    secret, _ = keypair
    with pytest.raises(IntegrityError):
        decode_stream(io.BytesIO(b"PGDMP plain dump, not encrypted"), _Sink(), identity=secret, use_age_cli=use_cli)


def test_source_error_propagates_unchanged(keypair) -> None:
    _, public = keypair

    class Boom(Exception):
        pass

    class FailingSource:
        def __init__(self) -> None:
            self.calls = 0

        def read(self, n: int = -1) -> bytes:
            self.calls += 1
            if self.calls > 3:
                raise Boom("dump died")
            return os.urandom(100_000)

    with pytest.raises(Boom):
        encode_stream(FailingSource(), _Sink(), recipients=[public], read_size=100_000)


def test_sink_error_propagates_unchanged(keypair) -> None:
    _, public = keypair

    class Full(Exception):
        pass

    class FailingSink:
        def __init__(self) -> None:
            self.written = 0

        def write(self, data: bytes) -> int:
            self.written += len(data)
            if self.written > 200_000:
                raise Full("no space")
            return len(data)

    with pytest.raises(Full):
        encode_stream(io.BytesIO(os.urandom(1_000_000)), FailingSink(), recipients=[public])


def test_decode_sink_error_propagates_and_age_is_stopped(keypair) -> None:
    secret, public = keypair
    stored, _ = _encode(os.urandom(3_000_000), [public])

    class Full(Exception):
        pass

    class FailingSink:
        def write(self, data: bytes) -> int:
            raise Full("disk full")

    with pytest.raises(Full):
        decode_stream(io.BytesIO(stored), FailingSink(), identity=secret, use_age_cli=True)


def test_encode_memory_does_not_grow_with_the_stream(keypair) -> None:
    """A 128 MiB stream is not buffered: peak traced allocations stay bounded (zstd's multithreaded
    jobs hand output over in bursts of a few MiB)."""
    import tracemalloc

    _, public = keypair

    class Repeating:
        def __init__(self, block: bytes, total: int) -> None:
            self.block, self.left = block, total

        def read(self, n: int = -1) -> bytes:
            if self.left <= 0:
                return b""
            self.left -= len(self.block)
            return self.block

    class Null:
        def write(self, data: bytes) -> int:
            return len(data)

    block = os.urandom(1 << 20)
    tracemalloc.start()
    try:
        encode_stream(Repeating(block, 128 << 20), Null(), recipients=[public], level=1, threads=2)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 32 << 20, f"peak Python allocations {peak / 2**20:.1f} MiB"


# -- the documented restore-by-hand path ---------------------------------------------------
def _age() -> str:
    path = shutil.which("age")
    assert path, "the age CLI is missing: apt-get install age"
    return path


def _zstd() -> str:
    path = shutil.which("zstd")
    assert path, "the zstd CLI is missing: apt-get install zstd"
    return path


def test_age_and_zstd_clis_restore_by_hand(tmp_path: Path, keypair) -> None:
    secret, public = keypair
    data = _mixed(2_000_000)
    stored, digests = _encode(data, [public], level=3, threads=2)
    (tmp_path / "data.zst.age").write_bytes(stored)
    key = tmp_path / "key.txt"
    key.write_text(f"# public key: {public}\n{secret}\n")
    key.chmod(0o600)

    decrypted = subprocess.run(
        [_age(), "-d", "-i", str(key), "-o", str(tmp_path / "data.zst"), str(tmp_path / "data.zst.age")],
        capture_output=True,
    )
    assert decrypted.returncode == 0, decrypted.stderr
    restored = subprocess.run(
        [_zstd(), "-d", "-q", "-c", str(tmp_path / "data.zst")], capture_output=True, check=True
    ).stdout
    assert restored == data
    assert hashlib.sha256(restored).hexdigest() == digests.plain_sha256


def test_x25519_key_that_happens_to_start_with_age1pq_is_accepted():
    # One random X25519 key in 1024 starts "age1pq"; it is a valid recipient (a regression: it was refused).
    from restorable.stream.keys import parse_recipients

    assert len(parse_recipients(["age1pq9qkhrcwnh7844h6mrvmwjjqqmnfr69l35fk2jmavkp2pa7hscsj4tnzs"])) == 1
