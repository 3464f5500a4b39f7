"""The resident prefetcher: ``python -m restorable.wal.prefetch [--config CFG] CACHE_DIR DB``.

Started (detached) by ``wal-fetch``, one per cache directory (an exclusive lock). It follows
``CACHE_DIR/.wanted`` (the file recovery asked for last, written by ``wal-fetch`` and by
``wal-fetch.sh``) and keeps the next ``DEPTH`` segments of that timeline in the cache, fetched
``WORKERS`` at a time, each checked against its sha256 before it gets its name. Segments behind
recovery are removed. When ``.wanted`` has not moved for ``IDLE_EXIT`` seconds (recovery ended or
stopped) it removes what it cached and exits. Its output goes nowhere: a failure only means the
next ``wal-fetch`` reads from the bucket itself.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

DEPTH = 8
WORKERS = 2
IDLE_EXIT = 30.0
_POLL = 0.05
_MISSING_RETRY = 1.0


def run_prefetcher(
    fetch_one, cache_dir: Path, *, depth: int = DEPTH, workers: int = WORKERS, idle_exit: float = IDLE_EXIT
) -> int:
    """The loop; ``fetch_one(name) -> bytes`` raises NotFound for a file not archived. Returns files cached."""
    from restorable.exceptions import NotFound
    from restorable.repository.layout import WAL_FILE_RE
    from restorable.wal.fetch import next_segments, read_wanted, write_atomically
    from restorable.wal.names import DEFAULT_SEGMENT_SIZE

    size = DEFAULT_SEGMENT_SIZE
    last_wanted, moved_at = None, time.monotonic()
    in_flight: dict[str, Future[bytes]] = {}
    missing_until: dict[str, float] = {}
    cached = 0
    with ThreadPoolExecutor(workers) as pool:
        while True:
            now = time.monotonic()
            if not cache_dir.is_dir():
                break  # the restored directory was removed: nobody will ask for more
            wanted = read_wanted(cache_dir)
            if wanted != last_wanted:
                last_wanted, moved_at = wanted, now
                if wanted and wanted[1]:
                    size = wanted[1]
            elif now - moved_at > idle_exit:
                break
            for name, future in list(in_flight.items()):
                if not future.done():
                    continue
                del in_flight[name]
                try:
                    data = future.result()
                    write_atomically(cache_dir / name, data)
                    cached += 1
                except NotFound:
                    missing_until[name] = now + _MISSING_RETRY
                except Exception:
                    missing_until[name] = now + _MISSING_RETRY * 5
                finally:
                    _fetching(cache_dir, name).unlink(missing_ok=True)
            names = next_segments(wanted[0], size, depth) if wanted else []
            if names:
                for entry in os.scandir(cache_dir):
                    if WAL_FILE_RE.fullmatch(entry.name) and entry.name[:8] == names[0][:8] and entry.name < names[0]:
                        os.unlink(entry.path)  # recovery moved past it
                for name in names:
                    if len(in_flight) >= workers:
                        break
                    if name in in_flight or (cache_dir / name).exists() or missing_until.get(name, 0) > now:
                        continue
                    # wal-fetch.sh waits for a segment marked in flight rather than start Python for it.
                    _fetching(cache_dir, name).touch()
                    in_flight[name] = pool.submit(fetch_one, name)
            time.sleep(_POLL)
    for entry in os.scandir(cache_dir) if cache_dir.is_dir() else ():
        if WAL_FILE_RE.fullmatch(entry.name) or entry.name.startswith(FETCHING):
            os.unlink(entry.path)
    return cached


#: ``<cache>/.fetching.<name>`` exists while the prefetcher fetches ``name`` (see wal-fetch.sh).
FETCHING = ".fetching."


def _fetching(cache_dir: Path, name: str) -> Path:
    return cache_dir / f"{FETCHING}{name}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="restorable.wal.prefetch")
    p.add_argument("--config")
    p.add_argument("cache_dir", type=Path)
    p.add_argument("database")
    args = p.parse_args(argv)
    from restorable.wal.fetch import lock_cache

    # The lock first, before the costly imports: a second prefetcher has nothing to do.
    try:
        lock = lock_cache(args.cache_dir)
    except OSError:
        return 1
    if lock is None:
        return 0
    try:
        from restorable.config import load_config
        from restorable.connections import resolve_connection
        from restorable.repository.layout import Layout
        from restorable.services import Services
        from restorable.wal.objects import read_wal_file

        services = Services(load_config(args.config), resolve=resolve_connection)
        store = services.store("restore")
        layout = Layout(services.config.storage.prefix)
        identity = services.identity()
        run_prefetcher(lambda name: read_wal_file(store, layout, identity, args.database, name), args.cache_dir)
    except Exception:
        return 1
    finally:
        os.close(lock)
    return 0


if __name__ == "__main__":
    sys.exit(main())
