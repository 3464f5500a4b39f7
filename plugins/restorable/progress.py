"""Progress for people (a one-line bar on a terminal) and for machines (periodic log lines)."""

from __future__ import annotations

import logging
import sys
import time
from typing import TextIO

log = logging.getLogger(__name__)


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} TiB"


class Progress:
    """Call with the running byte count; draws at most ~10 times a second."""

    def __init__(self, label: str, *, stream: TextIO | None = None, interval: float | None = None) -> None:
        self.label = label
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.interval = interval if interval is not None else (0.1 if self.tty else 10.0)
        self.started = time.monotonic()
        self._last = 0.0
        self.done = 0

    def __call__(self, done: int) -> None:
        self.done = done
        now = time.monotonic()
        if now - self._last >= self.interval:
            self._last = now
            self._draw(now)

    def _draw(self, now: float, final: bool = False) -> None:
        elapsed = max(now - self.started, 1e-9)
        rate = self.done / elapsed
        if self.tty:
            end = "\n" if final else ""
            self.stream.write(f"\r{self.label}: {human_bytes(self.done)}  {human_bytes(rate)}/s  {elapsed:6.1f}s{end}")
            self.stream.flush()
        else:
            log.info("%s progress bytes=%d rate_mb_s=%.1f elapsed_s=%.1f", self.label, self.done, rate / 1e6, elapsed)

    def finish(self) -> None:
        self._draw(time.monotonic(), final=True)
