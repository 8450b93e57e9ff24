"""Where a check's time goes: the engine's phases timed beside JAX's compile events.

The engine marks its phases with :func:`phase` (drawing inputs, running a batch, shrinking,
the bound interpreter); JAX reports tracing, lowering and XLA compilation through
``jax.monitoring``. Outside a :class:`Breakdown` a phase costs one list lookup.

Phases nest (a batch's first run traces and compiles; the bound interpreter runs inside a
trace), so each instant of the run is given to the innermost phase covering it, in the order
of :data:`CATEGORIES`; what no phase covers is Hypothesis planning and bookkeeping.
Intervals are unioned first: nested traces of jitted helpers are not counted twice.
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import time
from collections.abc import Iterator
from typing import Any

from jax import monitoring

__all__ = ["CATEGORIES", "JAX_EVENTS", "OTHER", "Breakdown", "phase"]

#: Innermost first: an instant covered by several is counted in the first.
CATEGORIES: tuple[str, ...] = ("bound interpreter", "trace", "lower", "compile", "load stored stage", "draw inputs",
                               "execute", "shrink")
#: The rest of a run: Hypothesis planning its batches, validation, bookkeeping.
OTHER = "Hypothesis and the rest"

#: JAX's monitoring events of tracing, lowering and XLA compilation, by category.
JAX_EVENTS: dict[str, str] = {
    "/jax/core/compile/jaxpr_trace_duration": "trace",
    "/jax/core/compile/jaxpr_to_mlir_module_duration": "lower",
    "/jax/core/compile/backend_compile_duration": "compile",
}

_ACTIVE: list[Breakdown] = []


@contextlib.contextmanager
def phase(name: str) -> Iterator[None]:
    """Time the block as phase ``name`` (one of :data:`CATEGORIES`) of the active breakdown."""
    if not _ACTIVE:
        yield
        return
    start = time.perf_counter()
    try:
        yield
    finally:
        for breakdown in _ACTIVE:
            breakdown.intervals[name].append((start, time.perf_counter()))


def _exclusive(intervals: dict[str, list[tuple[float, float]]], start: float, stop: float) -> dict[str, float]:
    """Seconds of [start, stop] given to each category, innermost first; the rest to OTHER."""
    edges = sorted({start, stop, *(t for spans in intervals.values() for span in spans for t in span)})
    seconds = collections.Counter({name: 0.0 for name in (*CATEGORIES, OTHER)})
    for lo, hi in itertools.pairwise(edges):
        if hi <= start or lo >= stop:
            continue
        middle = 0.5 * (lo + hi)
        owner = next((name for name in CATEGORIES
                      if any(a <= middle < b for a, b in intervals.get(name, ()))), OTHER)
        seconds[owner] += min(hi, stop) - max(lo, start)
    return dict(seconds)


class Breakdown:
    """Within the ``with`` block: the seconds of each category (:meth:`seconds`)."""

    def __init__(self) -> None:
        self.intervals: dict[str, list[tuple[float, float]]] = collections.defaultdict(list)
        self.counts: collections.Counter[str] = collections.Counter()
        self._start = self._stop = 0.0

    def _listen(self, event: str, duration: float, **_: Any) -> None:
        if event in JAX_EVENTS:
            now = time.perf_counter()
            self.intervals[JAX_EVENTS[event]].append((now - duration, now))
            self.counts[JAX_EVENTS[event]] += 1

    def __enter__(self) -> Breakdown:
        monitoring.register_event_duration_secs_listener(self._listen)
        _ACTIVE.append(self)
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        self._stop = time.perf_counter()
        _ACTIVE.remove(self)
        monitoring.unregister_event_duration_listener(self._listen)

    @property
    def wall(self) -> float:
        return self._stop - self._start

    def seconds(self) -> dict[str, float]:
        """Each category's share of the block's wall time (they sum to :attr:`wall`)."""
        return _exclusive(self.intervals, self._start, self._stop)
