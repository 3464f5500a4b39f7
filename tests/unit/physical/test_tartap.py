"""The tar tap keeps backup_label and backup_manifest as the tar streams past, in any chunking."""

from __future__ import annotations

import io
import tarfile

import pytest

from restorable.physical.tartap import TarTap


def _tar(members: dict[str, bytes], long_name: str | None = None) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        if long_name:
            info = tarfile.TarInfo(long_name)
            info.size = 3
            tar.addfile(info, io.BytesIO(b"abc"))
    return out.getvalue()


class _Chunks(io.RawIOBase):
    def __init__(self, data: bytes, size: int) -> None:
        self.data, self.size, self.pos = data, size, 0

    def read(self, n: int = -1) -> bytes:
        chunk = self.data[self.pos : self.pos + min(n, self.size)]
        self.pos += len(chunk)
        return chunk


@pytest.mark.parametrize("chunk", [1, 7, 511, 512, 513, 65536])
def test_members_are_kept_and_the_stream_passes_unchanged(chunk):
    manifest = b'{"WAL-Ranges": []}' * 100
    data = _tar(
        {"backup_label": b"START WAL LOCATION: 0/2000028\n", "base/1/1259": b"\0" * 9000, "backup_manifest": manifest},
        long_name="d/" + "x" * 150 + "/backup_manifest",
    )
    tap = TarTap(_Chunks(data, chunk), frozenset({"backup_label", "backup_manifest"}))
    passed = b"".join(iter(lambda: tap.read(4096), b""))
    assert passed == data
    assert tap.members == {"backup_label": b"START WAL LOCATION: 0/2000028\n", "backup_manifest": manifest}
    assert tap.ended
