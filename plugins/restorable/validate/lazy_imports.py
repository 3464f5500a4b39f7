"""Defer the imports Great Expectations makes for expectations a drill never runs.

``import great_expectations`` registers every expectation and metric it ships, and a few of
those modules import ``scipy.stats`` (distribution tests) and ``altair`` (charts) at module
level. Measured here: the import takes 232 MiB and 2.0 s; with those two deferred, 153 MiB and
1.25 s. A drill's peak RSS is mostly that import (issue 17: 256 MiB at most for 2,000 tables).

Deferred, not removed: :class:`importlib.util.LazyLoader` hands the importing module a module
object whose real import runs on its first attribute access. GX's code that uses them (a KS
test, a chart) still works, it just pays the import then; nothing Restorable runs touches them,
and ``tests/unit/validate/test_lazy_imports.py`` checks that GX imports without them and that
they still work when touched.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import sys
import threading
from collections.abc import Sequence
from types import ModuleType

#: Modules GX imports at import time but only uses for expectations Restorable does not run.
DEFERRED = ("scipy.stats", "altair")

_lock = threading.Lock()


class _DeferringFinder(importlib.abc.MetaPathFinder):
    """Finds the named modules as the path finder would, with their execution deferred."""

    def __init__(self, names: Sequence[str]) -> None:
        self.names = frozenset(names)

    def find_spec(self, name: str, path: Sequence[str] | None, target: ModuleType | None = None):
        if name not in self.names:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec  # not found, or a loader LazyLoader cannot wrap: the normal import
        spec.loader = importlib.util.LazyLoader(spec.loader)
        return spec


def defer_unused_imports(names: Sequence[str] = DEFERRED) -> None:
    """Install the deferring finder once (idempotent, thread-safe); modules already imported stay as they are."""
    with _lock:
        if not any(isinstance(finder, _DeferringFinder) for finder in sys.meta_path):
            sys.meta_path.insert(0, _DeferringFinder(names))


def is_loaded(name: str) -> bool:
    """Whether ``name`` has really been imported (a deferred module not yet touched is not:
    LazyLoader gives it a class of its own until the first attribute access)."""
    module = sys.modules.get(name)
    return module is not None and type(module) is ModuleType
