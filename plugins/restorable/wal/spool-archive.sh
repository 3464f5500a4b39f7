#!/bin/sh
# PostgreSQL's archive_command for Restorable's WAL spool (see docs/wal-archiver.md):
#   archive_command = '/path/to/spool-archive.sh %p %f /var/lib/restorable/spool/<db> <spool_max_bytes>'
# Copies one WAL file into the spool durably (copy to a temporary name, fsync it, rename, fsync
# the directory), so the archiver only ever sees complete files. Exits non-zero, and PostgreSQL
# keeps the file in pg_wal and retries later, when:
#   - the spool would grow past <spool_max_bytes> (the bucket is unreachable and the archiver
#     cannot drain it): WAL piles up in pg_wal instead, which is what max_wal_size and disk
#     monitoring already watch; nothing is lost;
#   - the spool holds a different file of the same name (never overwritten: the archiver alarms).
# No Python here: a Python process per segment costs ~0.6 s and caps WAL at ~24 MB/s.
# Needs GNU coreutils and findutils (stat -c, find -printf, sync FILE): Debian, Ubuntu, RHEL, the
# postgres Docker images on Debian; not busybox (Alpine images), where basic_archive is the way.
set -eu
src=$1 name=$2 spool=$3 max=$4
dest="$spool/$name"
tmp="$spool/.tmp.$name.$$"
if [ -e "$dest" ]; then
    # PostgreSQL may archive a file again after a crash; the same bytes are fine.
    if cmp -s "$src" "$dest"; then exit 0; fi
    echo "spool-archive: $dest exists with different content; refusing to overwrite it" >&2
    exit 1
fi
size=$(stat -c %s "$src")
# Every file in the spool counts, temporary ones included (as the archiver counts them).
used=$(find "$spool" -maxdepth 1 -type f -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }')
if [ $((used + size)) -gt "$max" ]; then
    echo "spool-archive: spool $spool holds $used bytes; $name ($size) would pass its bound of $max; keeping it in pg_wal" >&2
    exit 1
fi
trap 'rm -f "$tmp"' EXIT
cp "$src" "$tmp"
sync "$tmp"
mv "$tmp" "$dest"
trap - EXIT
sync "$spool"
