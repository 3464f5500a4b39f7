"""The reverse pass: stored bytes → sha256 → age decrypt → zstd decompress → sha256 → sink.

Two decryptors give the same result. Debian's ``age`` CLI decrypts faster than pyrage's
``decrypt_io`` (measured here on a busy 2-core box: 730 against 460 MB/s; DESIGN.md has
~1 GB/s against ~220 MB/s on a quiet one) and runs in its own process, beside the
decompression; so it is used when installed, and pyrage is the fallback that always works.
The identity reaches ``age`` as ``--identity /dev/fd/N``, an in-memory file it inherits
(``engines.process.secret_file``): never a named file on disk, argv or the environment; and
``age`` gets only the base environment (no ``AIRFLOW_CONN_*``, no S3 keys).

A wrong identity is detected from the age header, before any plaintext exists, so nothing
reaches ``sink``. A corrupt or truncated stream fails the authenticated encryption (or the
zstd frame checksum) and raises IntegrityError; a prefix of the plain stream may already
have been written by then, so callers restoring into a database treat the whole restore
as failed.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import threading
from collections.abc import Callable
from typing import IO, Any

import pyrage
import zstandard

from restorable.engines.process import child_env, running, secret_file
from restorable.exceptions import DecryptionError, IntegrityError, RestorableError
from restorable.stream.digests import HashingReader, HashingWriter, StreamDigests
from restorable.stream.keys import parse_identity

log = logging.getLogger(__name__)

READ_SIZE = 1 << 20
_STDERR_TAIL = 2000
#: Seconds a failed (or interrupted) decode waits for its feeder thread before leaving it.
FEEDER_GRACE_SECONDS = 1.0

_WRONG_KEY_HINT = (
    "Use the secret key (AGE-SECRET-KEY-1...) whose public key was listed in encryption.recipients "
    "when this backup was made; the manifest lists the recipients' key ids"
)


def age_cli_path() -> str | None:
    """The ``age`` binary to decrypt with, or None to use pyrage."""
    return shutil.which("age")


def decode_stream(
    stored: IO[bytes],
    sink: Any,
    *,
    identity: str,
    on_progress: Callable[[int], None] | None = None,
    use_age_cli: bool | None = None,
) -> StreamDigests:
    """Decrypt and decompress ``stored`` into ``sink.write``; return the digests of both sides.

    ``identity`` is the age secret key (or a key file's text). ``use_age_cli``: None picks the
    ``age`` CLI when installed, True requires it, False forces pyrage.
    ``on_progress`` receives the plain bytes written so far.
    """
    parsed = parse_identity(identity)
    age = age_cli_path()
    if use_age_cli is None:
        use_age_cli = age is not None
    elif use_age_cli and age is None:
        raise IntegrityError(
            "the age CLI was asked for but is not installed",
            hint="Install it (`apt-get install age`) or let Restorable decrypt with pyrage",
        )
    stored_reader = HashingReader(stored)
    plain_writer = HashingWriter(sink, on_progress)
    if use_age_cli:
        assert age is not None
        _decode_with_age_cli(age, str(parsed), stored_reader, plain_writer)
    else:
        _decode_with_pyrage(parsed, stored_reader, plain_writer)
    return StreamDigests(
        plain_bytes=plain_writer.bytes,
        stored_bytes=stored_reader.bytes,
        plain_sha256=plain_writer.hexdigest(),
        stored_sha256=stored_reader.hexdigest(),
    )


class _FrameDecompressor:
    """Push-style zstd decompression that, unlike ``stream_reader``, notices truncation.

    zstandard reports a stream cut inside a frame as a quiet EOF; each frame is therefore
    decompressed with ``read_across_frames=False`` so ``eof`` says whether it ended, and a
    following frame (as ``zstd`` writes for concatenated files) starts a new one.
    """

    def __init__(self, out: HashingWriter) -> None:
        self._dctx = zstandard.ZstdDecompressor()
        self._out = out
        self._dobj = self._dctx.decompressobj(write_size=READ_SIZE)

    def push(self, data: bytes) -> None:
        while data:
            try:
                produced = self._dobj.decompress(data)
            except zstandard.ZstdError as exc:
                raise IntegrityError(
                    f"the backup decrypted but its zstd stream is corrupt: {exc}",
                    hint="The stored object was damaged; restore from another backup",
                ) from None
            if produced:
                self._out.write(produced)
            data = self._dobj.unused_data if self._dobj.eof else b""
            if data:
                self._dobj = self._dctx.decompressobj(write_size=READ_SIZE)

    def finish(self) -> None:
        if not self._dobj.eof:
            raise IntegrityError(
                "the backup decrypted but its zstd stream ends in the middle of a frame",
                hint="The stored object was truncated; restore from another backup",
            )


def _decode_with_age_cli(age: str, identity: str, stored: HashingReader, out: HashingWriter) -> None:
    with secret_file(identity + "\n", "age-identity") as key_file:
        pipes = {"stdin": subprocess.PIPE, "stdout": subprocess.PIPE, "stderr": subprocess.PIPE}
        decrypt = [age, "--decrypt", "--identity", key_file.path]
        with running(decrypt, **pipes, env=child_env(), pass_fds=key_file.pass_fds) as proc:
            # age holds its own copy of the descriptor: the parent needs none (one fewer to leak).
            key_file.close()
            feed_error: list[BaseException] = []
            stderr_chunks: list[bytes] = []

            def feed() -> None:
                try:
                    while True:
                        chunk = stored.read(READ_SIZE)
                        if not chunk:
                            break
                        proc.stdin.write(chunk)
                except BrokenPipeError:
                    pass  # age stopped reading: its exit status tells why
                except BaseException as exc:  # the stored stream failed (e.g. S3 read error)
                    feed_error.append(exc)
                    proc.kill()
                finally:
                    try:
                        proc.stdin.close()
                    except OSError:
                        pass

            def drain_stderr() -> None:
                stderr_chunks.append(proc.stderr.read())

            feeder = threading.Thread(target=feed, name="age-feed", daemon=True)
            errpump = threading.Thread(target=drain_stderr, name="age-stderr", daemon=True)
            feeder.start()
            errpump.start()
            failed = False
            try:
                decompressor = _FrameDecompressor(out)
                started = False
                while True:
                    chunk = proc.stdout.read(READ_SIZE)
                    if not chunk:
                        break
                    started = True
                    decompressor.push(chunk)
                # With no output at all age refused the input; its exit status says why.
                if started and proc.wait() == 0:
                    decompressor.finish()
            except BaseException:
                failed = True
                proc.kill()
                raise
            finally:
                proc.stdout.close()
                returncode = proc.wait()
                # After a failure (a SIGTERM above all) the feeder may sit in a read of the stored
                # object that nothing here can cut short: a stalled S3 response holds it for the
                # client's read_timeout (60 s), far past the 5 s Airflow leaves before its SIGKILL.
                # Leave it then: a daemon thread, it ends at its next read or write (age is gone)
                # and cannot outlive the process.
                feeder.join(FEEDER_GRACE_SECONDS if failed else None)
                errpump.join()
        if feed_error:
            raise feed_error[0]
        stderr = b"".join(stderr_chunks).decode("utf-8", "replace").strip()
        if returncode != 0:
            raise _age_error(stderr[-_STDERR_TAIL:])


def _age_error(stderr: str) -> RestorableError:
    lowered = stderr.lower()
    if "no identity matched" in lowered or "no matching keys" in lowered:
        return DecryptionError(
            "the age identity given does not match any recipient of this backup "
            f"(age: {stderr.removeprefix('age: error: ')})",
            hint=_WRONG_KEY_HINT,
        )
    return IntegrityError(
        f"decrypting the backup failed: {stderr or 'age exited non-zero without a message'}",
        hint="The stored object is corrupt, truncated or not an age file; restore from another backup",
    )


class _BufferedPush:
    """pyrage's writer: collects its 8 KiB writes into READ_SIZE pieces for the decompressor."""

    def __init__(self, out: HashingWriter) -> None:
        self.decompressor = _FrameDecompressor(out)
        self._buf = bytearray()
        self.error: BaseException | None = None

    def write(self, data: bytes) -> int:
        try:
            self._buf += data
            if len(self._buf) >= READ_SIZE:
                self._push()
            return len(data)
        except BaseException as exc:
            self.error = exc
            raise

    def _push(self) -> None:
        if self._buf:
            chunk = bytes(self._buf)
            self._buf.clear()
            self.decompressor.push(chunk)

    def finish(self) -> None:
        self._push()
        self.decompressor.finish()

    def flush(self) -> None:
        pass


def _decode_with_pyrage(identity: Any, stored: HashingReader, out: HashingWriter) -> None:
    push = _BufferedPush(out)
    try:
        pyrage.decrypt_io(stored, push, [identity])
    except Exception as exc:
        if push.error is not None:
            raise push.error from None
        message = str(exc)
        if "no matching keys" in message.lower():
            raise DecryptionError(
                f"the age identity given does not match any recipient of this backup ({message})",
                hint=_WRONG_KEY_HINT,
            ) from None
        raise IntegrityError(
            f"decrypting the backup failed: {message}",
            hint="The stored object is corrupt, truncated or not an age file; restore from another backup",
        ) from None
    push.finish()
