"""``derivcheck bench``: what checking costs, and what each closed form costs.

Three measurements, each printed as a table (or JSON):

* **throughput**: points checked per second by the batched checker, by a per-point loop
  (the jitted closed form and the jitted float64 reference called once per point, compared
  on the host) and by ``jax.test_util.check_grads`` called once per point on the closed
  form (finite differences against JAX's VJP: the usual per-point derivative checker). All
  three are timed after a warm-up call, on inputs drawn beforehand; the batched checker's
  warm-up (its compilation) is reported apart as its cold cost.
* **compile**: where a cold gate's time goes. Every claim is verified as ``derivcheck
  verify`` does (one process, claims in order, the ``ci`` profile), and each run's wall time
  is split by :mod:`derivcheck._timing` into tracing, the bound interpreter, lowering, XLA
  compilation, drawing, executing, shrinking and the rest (Hypothesis planning,
  bookkeeping); process start and ``import`` are timed in fresh interpreters. Beside it, the
  throughput run's own tracing and compile time (JAX's monitoring events).
* **scaling**: run time of a closed form against its autodiff counterpart as every
  dimension of its domain grows, with the growth exponent fitted on the largest sizes.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import time
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import jax
import numpy as np
from jax import monitoring
from jax.test_util import check_grads

from derivcheck._checker import batched_checker, run_batch
from derivcheck._placement import placement_for
from derivcheck._timing import JAX_EVENTS, Breakdown
from derivcheck.claims import Claim, Domain
from derivcheck.inputs import REGIMES, BatchPlan, draw_batch
from derivcheck.tolerance import tolerance_for

__all__ = ["SCALING_CASES", "BreakdownRow", "CompileEvents", "ThroughputRow", "breakdown", "growth_exponent",
           "scaling", "start_up", "throughput"]

# (claim id, what is compared, sizes): the softmax Jacobian materialised, M ⊙ (I - Mᵀ),
# against the VJP of softmax; each document's hand-written network backward pass against
# jax.grad. Every dimension symbol of the claim's domain takes the size n.
SCALING_CASES: tuple[tuple[str, str, tuple[int, ...]], ...] = (
    ("sharma2024/eq46-softmax-backprop-masked", "M⊙(I−Mᵀ) dE/dY vs VJP of softmax",
     (64, 256, 1024, 2048, 4096)),
    ("sharma2024/sec2-network-backprop", "§2 network backward vs jax.grad", (16, 64, 256, 512, 1024)),
    ("challa2022/general-recursion-network", "network recursion vs jax.grad", (16, 64, 256, 512, 1024)),
    ("vijay2019/sec2-network-double-backprop", "double backprop vs jax.grad of jax.grad",
     (4, 8, 16, 32, 64)),
    ("mnist_notes/network-gradients", "network gradients vs jax.grad", (16, 64, 256, 512, 1024)),
    ("dey/summary-network-gradients", "summary steps 1-4 (corrected) vs jax.grad", (16, 64, 256, 512, 1024)),
)


@dataclasses.dataclass(frozen=True)
class ThroughputRow:
    """One claim in one dtype: points and seconds per method (steady state)."""

    id: str
    dtype: str
    batched_points: int
    batched_s: float
    batched_compile_s: float
    loop_points: int
    loop_s: float
    check_grads_points: int
    check_grads_s: float
    check_grads_note: str


def _timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _largest_bucket(domain: Domain) -> int:
    return len(domain.buckets) - 1


def _batched(claim: Claim, dtype: str, device, points: int, batches: int, seed: int) -> tuple[int, float, float]:
    placement = placement_for(device)
    checker = batched_checker(claim.closed_form, claim.reference, claim.reference_right,
                              tuple(a.kinks for a in claim.domain.args), dtype, placement.platform,
                              reference_platform=placement.reference_platform)
    bucket = _largest_bucket(claim.domain)
    draws = [draw_batch(claim.domain, BatchPlan(bucket, REGIMES[k % len(REGIMES)], k), points=points,
                        dtype=np.dtype(dtype), seed=seed) for k in range(batches + 1)]
    compile_s = _timed(lambda: run_batch(checker, draws[0], placement))
    seconds = _timed(lambda: [run_batch(checker, d, placement) for d in draws[1:]])
    return points * batches, seconds, compile_s


def _per_point_loop(claim: Claim, dtype: str, device, points: int, seed: int) -> tuple[int, float]:
    closed_form, reference = jax.jit(claim.closed_form), jax.jit(claim.reference)
    batch = draw_batch(claim.domain, BatchPlan(_largest_bucket(claim.domain), "unit", 0), points=points + 1,
                       dtype=np.dtype(dtype), seed=seed)
    eps = tolerance_for(dtype).eps
    truth = placement_for(device).reference_devices[0]  # float64 where it is real

    def check(k: int) -> bool:
        point = [jax.device_put(a[k], device) for a in batch]
        wide = [jax.device_put(np.asarray(a[k], np.float64), truth) for a in batch]
        cf = jax.tree_util.tree_leaves(jax.device_get(closed_form(*point)))
        ref = jax.tree_util.tree_leaves(jax.device_get(reference(*wide)))
        # A plain relative test, as a hand-written loop would have it.
        return all(np.allclose(c, r, rtol=100 * eps, atol=100 * eps) for c, r in zip(cf, ref))

    check(0)  # compiles both
    return points, _timed(lambda: [check(k) for k in range(1, points + 1)])


def _check_grads(claim: Claim, dtype: str, device, points: int, seed: int) -> tuple[int, float, str]:
    batch = draw_batch(claim.domain, BatchPlan(_largest_bucket(claim.domain), "unit", 0), points=points + 1,
                       dtype=np.dtype(dtype), seed=seed)
    disagreements = 0

    def check(k: int) -> None:
        nonlocal disagreements
        args = tuple(jax.device_put(a[k], device) for a in batch)
        try:
            check_grads(claim.closed_form, args, order=1, modes=("rev",))
        except AssertionError:  # timed all the same: the work was done
            disagreements += 1

    try:
        check(0)
    except Exception as exc:  # a closed form JAX cannot differentiate
        return 0, 0.0, f"not run: {type(exc).__name__}"
    disagreements = 0  # the warm-up point is not one of the timed ones
    seconds = _timed(lambda: [check(k) for k in range(1, points + 1)])
    note = f"{disagreements} of {points} points outside check_grads' tolerance" if disagreements else ""
    return points, seconds, note


def throughput(claims: Sequence[Claim], dtypes: Sequence[str], device, *, points: int = 128, batches: int = 4,
               loop_points: int = 64, check_grads_points: int = 8, seed: int = 0,
               on_row: Callable[[ThroughputRow], None] = lambda row: None) -> list[ThroughputRow]:
    """Time the three ways of checking every claim in every dtype (see the module doc)."""
    rows = []
    for claim in claims:
        for dtype in dtypes:
            b_points, b_s, compile_s = _batched(claim, dtype, device, points, batches, seed)
            l_points, l_s = _per_point_loop(claim, dtype, device, loop_points, seed)
            g_points, g_s, note = _check_grads(claim, dtype, device, check_grads_points, seed)
            row = ThroughputRow(claim.id, dtype, b_points, b_s, compile_s, l_points, l_s, g_points, g_s, note)
            on_row(row)
            rows.append(row)
    return rows


@dataclasses.dataclass(frozen=True)
class BreakdownRow:
    """One claim verified in one dtype, cold: its wall time and each category's share."""

    id: str
    dtype: str
    wall_s: float
    seconds: dict[str, float]
    compiles: int


def breakdown(claims: Sequence[Claim], dtypes: Sequence[str], device, *, profile: str = "ci", seed: int = 0,
              on_row: Callable[[BreakdownRow], None] = lambda row: None) -> list[BreakdownRow]:
    """Verify every claim in every dtype, in order, as a cold gate does; time each run's parts.

    Stages shared between claims (the comparison stages of a dtype) are compiled by the
    first claim that needs them, as in a real run.
    """
    from derivcheck._verify import verify

    rows = []
    for claim in claims:
        for dtype in dtypes:
            with Breakdown() as b:
                verify(claim, dtype=dtype, profile=profile, seed=seed, device=device)
            row = BreakdownRow(claim.id, dtype, b.wall, b.seconds(), b.counts["compile"])
            on_row(row)
            rows.append(row)
    return rows


def start_up(*, repeats: int = 3) -> dict[str, float]:
    """Seconds for a fresh interpreter to start, to ``import jax``, and to import derivcheck
    and load the bundled catalogs (best of ``repeats``, each a new process)."""
    import subprocess
    import sys

    programs = {"interpreter": "pass", "import jax": "import jax",
                "import derivcheck + catalogs": "import derivcheck; derivcheck.catalog()"}

    def best(code: str) -> float:
        return min(_timed(lambda: subprocess.run([sys.executable, "-c", code], check=True))
                   for _ in range(repeats))

    return {name: best(code) for name, code in programs.items()}


class CompileEvents:
    """Seconds JAX spent tracing, lowering and compiling inside the ``with`` block."""

    EVENTS: ClassVar[dict[str, str]] = JAX_EVENTS

    def __init__(self):
        self.seconds: collections.Counter[str] = collections.Counter()
        self.counts: collections.Counter[str] = collections.Counter()
        self._active = False

    def _listen(self, event: str, duration: float, **_: Any) -> None:
        if self._active and event in self.EVENTS:
            self.seconds[self.EVENTS[event]] += duration
            self.counts[self.EVENTS[event]] += 1

    def __enter__(self):
        self._active = True
        monitoring.register_event_duration_secs_listener(self._listen)
        return self

    def __exit__(self, *exc) -> None:
        self._active = False
        monitoring.unregister_event_duration_listener(self._listen)


def _best_time(fn: Callable[[], Any], *, budget_s: float = 0.2, repeats: int = 5) -> float:
    """Seconds per call: the best of ``repeats`` rounds, each long enough to time."""
    jax.block_until_ready(fn())  # compile

    def run(calls: int) -> float:
        return _timed(lambda: [jax.block_until_ready(fn()) for _ in range(calls)]) / calls

    calls = 1
    while run(calls) * calls < budget_s / repeats and calls < 1 << 14:
        calls *= 4
    return min(run(calls) for _ in range(repeats))


def growth_exponent(sizes: Sequence[int], seconds: Sequence[float], *, fit_last: int = 3) -> float:
    """Least-squares slope of log(time) against log(n) over the ``fit_last`` largest sizes.

    Small sizes are dominated by the fixed cost of a call, which would flatten the slope.
    """
    x, y = np.log(np.asarray(sizes[-fit_last:], float)), np.log(np.asarray(seconds[-fit_last:], float))
    return float(np.polyfit(x, y, 1)[0])


def scaling(claims_by_id: dict[str, Claim], device, *, dtype: str = "float32", sizes_override=None,
            on_row: Callable[[dict], None] = lambda row: None) -> list[dict]:
    """Closed form against autodiff as the size grows, for :data:`SCALING_CASES`."""
    rows = []
    for claim_id, label, sizes in SCALING_CASES:
        claim = claims_by_id.get(claim_id)
        if claim is None:
            continue
        sizes = tuple(sizes_override or sizes)
        closed_form, reference = jax.jit(claim.closed_form), jax.jit(claim.reference)
        cf_s, ref_s = [], []
        for n in sizes:
            domain = dataclasses.replace(claim.domain, dims=tuple((sym, (n,)) for sym, _ in claim.domain.dims))
            batch = draw_batch(domain, BatchPlan(0, "unit", 0), points=1, dtype=np.dtype(dtype), seed=0)
            args = [jax.device_put(a[0], device) for a in batch]
            cf_s.append(_best_time(functools.partial(closed_form, *args)))
            ref_s.append(_best_time(functools.partial(reference, *args)))
        row = {"id": claim_id, "compares": label, "dtype": dtype, "sizes": list(sizes),
               "closed_form_s": cf_s, "autodiff_s": ref_s,
               "closed_form_exponent": growth_exponent(sizes, cf_s),
               "autodiff_exponent": growth_exponent(sizes, ref_s)}
        on_row(row)
        rows.append(row)
    return rows
