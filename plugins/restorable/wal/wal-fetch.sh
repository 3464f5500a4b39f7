#!/bin/sh
# PostgreSQL's restore_command with a fast path (see docs/wal-archiver.md):
#   restore_command = '/path/to/wal-fetch.sh %f %p <python> -m restorable.cli --config <cfg> wal-fetch <db>'
# A segment the prefetcher already fetched and checked (its sha256 matched the archive's) is moved
# from <dir of %p>/restorable-prefetch to %p without starting Python (~0.6 s a process, which would
# cap replay near 25 MB/s). Anything else runs the command given, with %f %p appended: its exit
# codes are PostgreSQL's contract (0 written, 1 only when not archived, 126 any other failure).
f=$1 p=$2
shift 2
cache="$(dirname "$p")/restorable-prefetch"
# The prefetcher is fetching it right now: waiting (at most 5 s) beats starting Python (~0.6 s) to
# fetch it a second time.
i=0
while [ ! -f "$cache/$f" ] && [ -e "$cache/.fetching.$f" ] && [ $i -lt 250 ]; do
    sleep 0.02
    i=$((i + 1))
done
if [ -f "$cache/$f" ]; then
    # Where recovery is now, noted before the move (a prefetcher that saw the file gone first would
    # fetch it again): the prefetcher keeps the next segments coming.
    printf '%s\n' "$f" > "$cache/.wanted.$$" && mv -f "$cache/.wanted.$$" "$cache/.wanted"
    if mv "$cache/$f" "$p" 2>/dev/null; then
        exit 0
    fi
fi
exec "$@" "$f" "$p"
