"""``python -m restorable.wal.prefetch [--config CFG] CACHE_DIR DB NAME...``: the detached
prefetcher ``wal-fetch`` starts (see ``fetch.py``). Quiet by design: its output goes nowhere,
and a failure only means the next fetch reads from the bucket itself."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="restorable.wal.prefetch")
    p.add_argument("--config")
    p.add_argument("cache_dir", type=Path)
    p.add_argument("database")
    p.add_argument("names", nargs="+")
    args = p.parse_args(argv)
    from restorable.wal.fetch import lock_cache, prefetch

    # The lock first, before the costly imports: a second prefetcher has nothing to do.
    try:
        lock = lock_cache(args.cache_dir)
    except OSError:
        return 1
    if lock is None:
        return 0
    from restorable.config import load_config
    from restorable.connections import resolve_connection
    from restorable.repository.layout import Layout
    from restorable.services import Services

    try:
        services = Services(load_config(args.config), resolve=resolve_connection)
        store = services.store("restore")
        prefetch(
            store,
            Layout(services.config.storage.prefix),
            services.identity(),
            args.database,
            args.names,
            args.cache_dir,
        )
    except Exception:
        return 1
    finally:
        os.close(lock)
    return 0


if __name__ == "__main__":
    sys.exit(main())
