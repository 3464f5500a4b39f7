"""SIGTERM and SIGINT become ``Interrupted`` in the main thread; clean-up runs; exit code 128+N."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from restorable.exceptions import Interrupted
from restorable.interrupt import held, stop_now, stop_on_signals

_PROBE = """
import os, signal, sys, time
from restorable.exceptions import Interrupted
from restorable.interrupt import stop_on_signals
try:
    with stop_on_signals():
        try:
            print("ready", flush=True)
            time.sleep(30)
        finally:
            # A second signal during the clean-up is ignored: the clean-up finishes.
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.2)
            print("cleaned-up", flush=True)
except Interrupted as exc:
    print(f"interrupted={exc.signal_name}", flush=True)
    sys.exit(exc.exit_code)
"""


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_stop_signal_unwinds_through_finally_and_exits_128_plus_n(signum, code):
    proc = subprocess.Popen([sys.executable, "-c", _PROBE], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    started = time.monotonic()
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=10)
    assert proc.returncode == code, err
    assert out.split() == ["cleaned-up", f"interrupted={signal.Signals(signum).name}"], err
    assert time.monotonic() - started < 5
    assert "received again while stopping" in err


def test_interrupted_is_not_an_exception_that_retries_or_wrappers_catch():
    stop = Interrupted(signal.SIGTERM)
    assert not isinstance(stop, Exception) and isinstance(stop, KeyboardInterrupt)
    assert stop.exit_code == 143 and str(stop) == "interrupted by SIGTERM"


def test_a_signal_within_held_is_raised_as_the_block_ends_not_inside_it():
    ran = []
    with stop_on_signals(), pytest.raises(Interrupted) as stopped:
        with held():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.05)  # the handler has run by now: it noted the signal
            ran.append("rest of the block")
    assert ran == ["rest of the block"]
    assert stopped.value.exit_code == 143


def test_stop_now_raises_at_once_outside_held_and_nested_holds_raise_at_the_outer_end():
    with pytest.raises(Interrupted):
        stop_now(signal.SIGTERM)
    order = []
    with pytest.raises(Interrupted):
        with held():
            with held():
                stop_now(signal.SIGINT)
                order.append("inner")
            order.append("outer")
    assert order == ["inner", "outer"]
    with held():  # nothing was left noted
        order.append("clean")
