"""Signals become an exception in the main thread, so a stopped command cleans up after itself.

SIGTERM is how Airflow stops a task (a timeout, "mark failed", a worker shutdown; SIGKILL follows
5 s later) and how ``kill`` and most supervisors stop a command; SIGINT is Ctrl-C. Both raise
:class:`~restorable.exceptions.Interrupted` where the main thread is, and the ``except
BaseException``/``finally`` paths that already handle failures do the rest: stop the child
tools, abort the multipart upload, drop the database a restore created, remove temp files.

Only the first signal raises: a second one while the clean-up runs is logged and ignored, so the
clean-up is not cut short (SIGKILL remains for the impatient).

:func:`held` closes the one gap that handling cannot: a signal landing between a child's start
and the line that puts it under a guard (``try``/``ExitStack``) would unwind past that guard and
leave the child running. Within ``held()`` a stop signal is noted; it is raised as the block
ends, once the child has a guard.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from restorable.exceptions import Interrupted

log = logging.getLogger(__name__)

#: The signals a command treats as "stop now, cleanly".
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)

_raised = threading.Event()
#: How deep the main thread is in :func:`held` blocks, and the stop signal noted meanwhile.
_holding = 0
_pending: int | None = None


def raise_interrupted(signum: int) -> None:
    """Raise :class:`Interrupted` for ``signum`` unless one was raised already (then log it)."""
    if _raised.is_set():
        log.warning("signal=%s received again while stopping: finishing the clean-up", signal.Signals(signum).name)
        return
    _raised.set()
    log.warning("signal=%s received: stopping and cleaning up", signal.Signals(signum).name)
    stop_now(signum)


def stop_now(signum: int) -> None:
    """Raise :class:`Interrupted` for ``signum`` now, or at the end of the :func:`held` block the
    main thread is in. Signal handlers (this module's, the Airflow operators' ``on_kill``) call it."""
    global _pending
    if _holding and threading.current_thread() is threading.main_thread():
        log.info("signal=%s held until the child just started is guarded", signal.Signals(signum).name)
        _pending = _pending or signum
        return
    raise Interrupted(signum)


@contextmanager
def held() -> Iterator[None]:
    """Within the block a stop signal is noted, not raised; it is raised when the block ends.

    For the few lines that start a child and hand it to its guard, never for waiting on one: a
    signal held for long would break the promise that a stopped command ends within seconds.
    In a thread other than the main one it changes nothing (signals only interrupt the main thread).
    """
    global _holding, _pending
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _holding += 1
    try:
        yield
    finally:
        _holding -= 1
        noted, _pending = (_pending, None) if not _holding else (None, _pending)
    if noted is not None:
        raise Interrupted(noted)


def _handler(signum: int, frame: Any) -> None:
    raise_interrupted(signum)


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """Within the block, SIGTERM and SIGINT raise :class:`Interrupted` in the main thread; the
    previous handlers come back afterwards. Outside the main thread (where Python cannot install
    handlers) it changes nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _raised.clear()
    previous = {signum: signal.signal(signum, _handler) for signum in STOP_SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
