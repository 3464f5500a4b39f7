"""Copies of every backup in other buckets (``storage.copies``): the "2" and "1" of 3-2-1.

A copy is a repository of its own, in the same layout (``repository/layout.py``) under the
destination's bucket and prefix, so every command reads it without special cases: ``list``,
``verify``, ``restore``, ``drill`` and ``lifecycle`` with ``--from NAME`` (``copy_services``), or a
config whose ``storage`` simply points at the copy (a host that holds only the copy's read
credentials). What the copy holds and why:

- every stored object the manifest lists (data, tablespaces, ``backup_manifest``) and the sealed
  settings, byte for byte: their sha256 are the primary manifest's, and each is read back from
  the destination and checked against it before anything is committed there;
- the manifest, *rebased*: the same document with each key moved under the destination's prefix
  and each version id the destination's own (a restore reads the version the manifest recorded,
  and the primary's version ids mean nothing in another bucket), and the destination's Object
  Lock; then its summary (``Catalog.write_manifest``): the copy's commit;
- a ``checksum`` verification record of the copy's own read-back (with ``copy_of``: the primary
  bucket, prefix and manifest sha256), so the destination's catalog says "verified" by the same
  rule as the primary's (``catalog.is_verified``), and its lifecycle keeps its own newest verified
  backup. A copy whose read-back differs is never committed: no manifest, nothing "verified".

Beside the backup in the *primary*, each attempt appends a ``copy`` record (``verifications/
<ts>-copy.json``, not a verification kind: it does not change the primary's verdict) naming the
destination, how it was copied and whether it verified, so ``restorable copy-status`` answers from
the primary alone. Restores during an outage read the destinations themselves (``fallback``).
"""

from restorable.copies.destinations import copy_services, destination, destinations

__all__ = ["copy_services", "destination", "destinations"]
