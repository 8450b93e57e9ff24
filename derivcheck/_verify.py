"""Checking one claim: bulk search, a shrunk counterexample, and the verdict."""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import HealthCheck, Phase, example, given, settings, target
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

from derivcheck._checker import (
    PointMetrics,
    batched_checker,
    explain_point,
    output_shape,
    run_batch,
    validate_outputs,
)
from derivcheck._config import scoped
from derivcheck._host import HostClosedForm, on_host_if_untraceable, usable_closed_form
from derivcheck._placement import Placement, describe, devices_of, placement_for, resolve_device
from derivcheck._timing import phase
from derivcheck.claims import Arg, Claim, Domain
from derivcheck.errors import InvalidArgument
from derivcheck.inputs import (
    KINDS,
    REGIMES,
    BatchPlan,
    batch_plans,
    buckets_by_size,
    draw_batch,
    in_dtype,
    no_subnormals,
    point_strategy,
    point_width,
)
from derivcheck.profiles import Profile, profile_named, search_seed
from derivcheck.results import RATIO_LOG10_EDGES, Result, SearchSummary, Verdict, ratio_histogram
from derivcheck.tolerance import tolerance_for

__all__ = ["DIRECTION_BOUND", "PRECISIONS", "check_arguments", "devices_of", "resolve_device", "verify"]

_QUIET = dict(database=None, deadline=None, suppress_health_check=list(HealthCheck), print_blob=False)


class _Counterexample(Exception):
    def __init__(self, bucket: int, args: tuple[np.ndarray, ...]):
        super().__init__("counterexample")
        self.bucket, self.point = bucket, args


def _kinks(domain: Domain) -> tuple[tuple[float, ...], ...]:
    return tuple(a.kinks for a in domain.args)


#: Matmul precisions a check can run at: float32 matrix products in full float32
#: (``highest``, the default), or at the backend's own default (TensorFloat-32 on GPUs,
#: bfloat16 passes on TPUs), which the tolerance model then charges for.
PRECISIONS = ("highest", "default")


def _checker_for(claim: Claim, domain: Domain, dtype: str, placement: Placement, precision: str):
    return batched_checker(
        claim.closed_form, claim.reference, claim.reference_right, _kinks(domain), dtype, placement.platform,
        precision, claim.sided, placement.reference_platform,
    )


class SearchTally:
    """The running totals of one search, batch by batch, and its summary at the end."""

    def __init__(self) -> None:
        self.counts = dict(points=0, failures=0, undecided=0, unresolved=0, cf_nonfinite=0, ref_nonfinite=0,
                           reference_varied=0)
        self.worst = dict(max_abs_error=0.0, max_rel_error=0.0, max_error_ratio=0.0, autodiff_error=0.0)
        self.histogram = np.zeros(len(RATIO_LOG10_EDGES) + 1, np.int64)

    def add(self, m: PointMetrics) -> None:
        decided = ~m.failed & ~m.undecided
        self.counts["points"] += int(decided.sum() + m.failed.sum())
        self.counts["reference_varied"] += int(m.ref_varies.sum())
        for key in ("failures", "undecided", "unresolved", "cf_nonfinite", "ref_nonfinite"):
            self.counts[key] += int(getattr(m, "failed" if key == "failures" else key).sum())
        for key, values in (("max_abs_error", m.abs_error), ("max_rel_error", m.rel_error),
                            ("max_error_ratio", m.ratio), ("autodiff_error", m.autodiff_error)):
            self.worst[key] = max(self.worst[key], float(values.max()))
        self.histogram += ratio_histogram(m.ratio, m.failed, decided)

    def summary(self, counterexample: dict[str, Any] | None) -> SearchSummary:
        return SearchSummary(**self.counts, **self.worst, counterexample=counterexample,
                             ratio_histogram=tuple(int(n) for n in self.histogram))


def _path_of(closed_form) -> str:
    """How a closed form was evaluated (:data:`derivcheck.results.Result.closed_form_path`)."""
    return getattr(closed_form, "path", "") or "jit"


def _search(claim: Claim, domain: Domain, dtype: str, prof: Profile, examples: int,
            seed: int, placement: Placement, shrink: bool,
            precision: str) -> tuple[SearchSummary, tuple[str, ...], str]:
    """Search ``domain`` for a point where ``claim`` fails: its summary, the operations
    whose rounding was estimated, and how the closed form was evaluated."""
    if domain.strategy is not None:
        return _search_strategy(claim, domain, dtype, prof, examples, seed, placement, precision)
    checker = _checker_for(claim, domain, dtype, placement, precision)
    np_dtype = jnp.dtype(dtype)
    tally = SearchTally()
    first_failure: list[tuple[int, tuple[np.ndarray, ...]]] = []
    validated: set[int] = set()

    def run_plan(plan: BatchPlan) -> None:
        with phase("draw inputs"):
            arrays = draw_batch(domain, plan, points=prof.points, dtype=np_dtype, seed=seed)
        if plan.bucket not in validated:
            validate_outputs(claim.id, claim.closed_form, claim.reference,
                             [jax.ShapeDtypeStruct(a.shape[1:], a.dtype) for a in arrays], dtype)
            validated.add(plan.bucket)
        m = run_batch(checker, arrays, placement)
        tally.add(m)
        # An exact formula's tolerance is one smallest normal: its ratio can overflow.
        ratio = np.nan_to_num(m.ratio.max(), posinf=np.finfo(np.float64).max)
        target(float(np.log1p(ratio)), label="log(1 + error / tolerance)")
        if m.failed.any() and not first_failure:
            k = int(np.argmax(np.where(m.failed, m.ratio, -1.0)))
            first_failure.append((plan.bucket, tuple(a[k] for a in arrays)))

    explore = given(batch_plans(domain))(run_plan)
    # Fixed batches first: every shape bucket and every regime at least once, whatever the
    # generated ones are (a special value such as a hidden unit's exact 0 must not depend
    # on what Hypothesis draws).
    buckets = len(domain.buckets)
    for k in range(max(buckets, len(REGIMES))):
        explore = example(BatchPlan(k % buckets, REGIMES[k % len(REGIMES)], seed=k))(explore)
    phases = [Phase.explicit, Phase.generate, Phase.target] if examples else [Phase.explicit]
    explore = settings(max_examples=max(examples, 1), phases=phases, **_QUIET)(explore)
    hypothesis_seed(search_seed(prof, seed))(explore)()

    counterexample = None
    if first_failure:
        with phase("shrink"):
            counterexample = _counterexample(claim, domain, dtype, prof, seed, placement, checker,
                                             first_failure[0], shrink)
    return tally.summary(counterexample), checker.estimated_operations(), _path_of(claim.closed_form)


#: Rows in one batch of a strategy's search: the drawn point and its kink variants, padded.
STRATEGY_BATCH = 8
#: With a strategy, Hypothesis draws this many points per example of the budget (plus one):
#: 150 at the ``ci`` profile, at about a millisecond each.
STRATEGY_POINTS_PER_EXAMPLE = 25
#: Directions (tangents, cotangents, Hessian vectors) are drawn with this magnitude: a
#: derivative is linear in them, so their scale only has to keep clear of overflow.
DIRECTION_BOUND = 1.0


class _Failure(Exception):
    def __init__(self, point: tuple[np.ndarray, ...]):
        super().__init__("counterexample")
        self.point = point


def _strategy_point(drawn, names: tuple[str, ...], np_dtype) -> tuple[np.ndarray, ...]:
    """What a strategy drew, in argument order; :class:`InvalidArgument` if it cannot be."""
    if isinstance(drawn, Mapping):
        if set(drawn) != set(names):
            raise InvalidArgument(f"the inputs strategy drew keys {tuple(drawn)}, expected {names}")
        drawn = tuple(drawn[n] for n in names)  # by name: a dict's order is the strategy's
    if not isinstance(drawn, tuple) or len(drawn) != len(names):
        raise InvalidArgument(f"the inputs strategy must draw a dict {{name: array}} or a tuple of {len(names)} arrays")
    point = []
    for name, x in zip(names, drawn):
        x = np.asarray(x, np.float64)
        if not np.all(np.isfinite(x)):
            raise InvalidArgument(f"the inputs strategy drew a non-finite value for {name!r}")
        point.append(no_subnormals(x, np_dtype))
    return tuple(point)


def _search_strategy(claim: Claim, domain: Domain, dtype: str, prof: Profile, examples: int, seed: int,
                     placement: Placement, precision: str) -> tuple[SearchSummary, tuple[str, ...], str]:
    """The search with a strategy as the source of inputs: Hypothesis draws one point per
    example, plus its directions; the point is checked with its kink variants (every element
    of a kinked argument set to each kink value, DESIGN.md principle 5); a failure is shrunk
    by Hypothesis itself."""
    np_dtype = jnp.dtype(dtype)
    names = tuple(a.name for a in domain.args)
    kinks = [(i, v) for i, a in enumerate(domain.args) for v in a.kinks]
    if len(kinks) + 2 > STRATEGY_BATCH:
        raise InvalidArgument(f"at most {STRATEGY_BATCH - 2} kink values with a strategy for inputs")
    # The first point drawn of each shape leads every later batch of that shape, so that
    # whether the reference varies is measured across the search, not within one point.
    state: dict[str, Any] = {"shapes": set(), "extra": (), "anchors": {}}
    tally = SearchTally()

    def probe(data):
        point = _strategy_point(data.draw(domain.strategy, label="inputs"), names, np_dtype)
        extra = domain.directions({n: jax.ShapeDtypeStruct(x.shape, np_dtype) for n, x in zip(names, point)}) \
            if domain.directions else {}
        state["extra"] = tuple(extra)
        width = point_width(np_dtype)
        point += tuple(in_dtype(Arg(n, kind="direction"),
                                data.draw(KINDS["direction"].point(s.shape, DIRECTION_BOUND, width), label=n), np_dtype)
                       for n, s in extra.items())
        shapes = tuple(jax.ShapeDtypeStruct(x.shape, np_dtype) for x in point)
        if "checker" not in state:
            state["closed_form"] = usable_closed_form(claim.closed_form, shapes, claim.id)
            state["checker"] = batched_checker(
                state["closed_form"], claim.reference, claim.reference_right,
                tuple(a.kinks for a in domain.args) + tuple(() for _ in extra), dtype, placement.platform,
                precision, claim.sided and claim.sided[:len(point)], placement.reference_platform)
        if shapes not in state["shapes"]:
            validate_outputs(claim.id, state["closed_form"], claim.reference, list(shapes), dtype)
            state["shapes"].add(shapes)
        rows = [point] + [tuple(np.full_like(x, value) if k == i else x for k, x in enumerate(point))
                          for i, value in kinks]
        anchor = state["anchors"].setdefault(shapes, point)
        batch = tuple(np.stack([anchor[k]] + [r[k] for r in rows] + [rows[0][k]] * (STRATEGY_BATCH - 1 - len(rows)))
                      for k in range(len(point)))
        m = run_batch(state["checker"], batch, placement).rows(1, 1 + len(rows))
        if "failure" not in state:  # shrinking re-runs failing points: count the search only
            tally.add(m)
        if m.failed.any():
            state["failure"] = True
            raise _Failure(rows[int(np.argmax(m.failed))])

    search = given(st.data())(probe)
    search = settings(max_examples=(examples + 1) * STRATEGY_POINTS_PER_EXAMPLE,
                      phases=[Phase.generate, Phase.shrink], **_QUIET)(search)
    counterexample = None
    try:
        hypothesis_seed(search_seed(prof, seed))(search)()
    except _Failure as minimal:
        point = minimal.point
        shapes = tuple(jax.ShapeDtypeStruct(x.shape, np_dtype) for x in point)
        detail = explain_point(state["checker"], point, STRATEGY_BATCH, placement,
                               output_shape(state["closed_form"], shapes))
        counterexample = {"inputs": {n: np.asarray(x, np.float64).tolist()
                                     for n, x in zip(names + state["extra"], point)},
                          "dims": {}, "shrunk": True, **detail}
    estimated = state["checker"].estimated_operations() if "checker" in state else ()
    return tally.summary(counterexample), estimated, _path_of(state.get("closed_form"))


def _fails_at(checker, point: tuple[np.ndarray, ...], batch: int, placement) -> bool:
    # Tile the point to the bulk batch size: the compiled checker is reused as it is.
    arrays = tuple(np.broadcast_to(a, (batch, *a.shape)).copy() for a in point)
    return bool(run_batch(checker, arrays, placement).failed[0])


def _counterexample(claim, domain, dtype, prof, seed, placement, checker, found, shrink) -> dict[str, Any]:
    """Shrink a failure to a minimal input with Hypothesis; fall back to the one found."""
    np_dtype = jnp.dtype(dtype)
    if shrink:
        bucket, point, shrunk = _shrink(domain, np_dtype, prof, seed, placement, checker, found)
    else:
        (bucket, point), shrunk = found, False
    out_shape = output_shape(claim.closed_form, tuple(jax.ShapeDtypeStruct(np.shape(a), np_dtype) for a in point))
    detail = explain_point(checker, point, prof.points, placement, out_shape)
    return {
        "inputs": {a.name: np.asarray(x, np.float64).tolist() for a, x in zip(domain.args, point)},
        "dims": domain.buckets[bucket],
        "shrunk": shrunk,
        **detail,
    }


def _shrink(domain, np_dtype, prof, seed, placement, checker, found):
    """Hypothesis's own search and shrinking over single points, smallest shapes first.

    Returns the first bucket's shrunk failure, or the bulk point (unshrunk) if none fails.
    """
    order = buckets_by_size(domain)
    budget = max(prof.shrink_examples // len(order), 1)
    def probe_for(bucket: int):
        def probe(args):
            args = tuple(in_dtype(arg, np.asarray(a, np.float64), np_dtype) for arg, a in zip(domain.args, args))
            if _fails_at(checker, args, prof.points, placement):
                raise _Counterexample(bucket, args)

        return probe

    for bucket in order:
        search = given(point_strategy(domain, dtype=np_dtype, bucket=bucket))(probe_for(bucket))
        search = settings(max_examples=budget, phases=[Phase.generate, Phase.shrink], **_QUIET)(search)
        search = hypothesis_seed(search_seed(prof, seed))(search)
        try:
            search()
        except _Counterexample as minimal:
            return minimal.bucket, minimal.point, True
    return found[0], found[1], False


def _verdict(claim: Claim, inside: SearchSummary, outside: SearchSummary | None) -> tuple[str, str]:
    if inside.points == 0:
        return Verdict.FAILED, "no point could be decided: every reference value was non-finite"
    failing = f"fails at {inside.failures} of {inside.points} points"
    if claim.expected == "holds":
        if inside.failures:
            return Verdict.FAILED, failing
        return Verdict.VERIFIED, f"holds at all {inside.points} points"
    if claim.expected == "erratum":
        if inside.failures:
            return Verdict.ERRATUM_CONFIRMED, failing
        return Verdict.ERRATUM_NOT_REPRODUCED, f"documented as wrong, but holds at all {inside.points} points"
    if claim.expected == "typo":
        if inside.failures:
            return Verdict.TYPO_CONFIRMED, f"{failing} as printed"
        return Verdict.TYPO_NOT_REPRODUCED, f"documented as a typo, but holds as printed at all {inside.points} points"
    if inside.failures:
        return Verdict.FAILED, f"{failing} even under its condition"
    assert outside is not None  # searched whenever the claim holds under its condition
    if not outside.failures:
        return Verdict.FAILED, (
            f"holds under its condition, but also at all {outside.points} points outside it: "
            "the condition is not confirmed"
        )
    return Verdict.CONDITIONAL_CONFIRMED, (
        f"holds at all {inside.points} points under its condition; fails at "
        f"{outside.failures} of {outside.points} outside it"
    )


def replay_command(claim: Claim, dtype: str, seed: int, profile: str, examples: int,
                   precision: str = "highest", placement: str = "") -> str:
    from derivcheck.catalog import source_of

    extra = ("" if precision == "highest" else f" --precision {precision}") + placement
    source = source_of(claim.document)
    where = "" if source is None else f" --catalog '{source}'"
    return (f"derivcheck verify{where} --claim '{claim.id}' --dtype {dtype} --seed {seed} "
            f"--profile {profile} --examples {examples}{extra}")


def first_bucket_avals(domain: Domain) -> tuple[jax.ShapeDtypeStruct, ...]:
    """The float64 argument shapes of ``domain``'s first shape bucket."""
    dims = domain.buckets[0]
    return tuple(jax.ShapeDtypeStruct(domain.shape_of(a, dims), np.float64) for a in domain.args)


def _restates_reference(claim: Claim) -> bool:
    """Whether the closed form traces to the very computation of its reference (at the
    first shape bucket): then the check compares a formula with itself."""
    if claim.domain.strategy is not None or isinstance(claim.closed_form, HostClosedForm):
        return False
    return _same_jaxpr(claim.closed_form, claim.reference, first_bucket_avals(claim.domain))


# Keyed like the checker's own stages (closed forms are hashable there too): every dtype and
# seed of a claim asks the same question.
@functools.lru_cache(maxsize=512)
def _same_jaxpr(closed_form, reference, avals: tuple[jax.ShapeDtypeStruct, ...]) -> bool:
    try:
        return str(jax.make_jaxpr(closed_form)(*avals)) == str(jax.make_jaxpr(reference)(*avals))
    except Exception:  # a closed form that does not trace is the check's to report
        return False


def vacuity(claim: Claim, inside: SearchSummary) -> str:
    """Why a check of ``claim`` proves nothing (DESIGN.md principle 9), or "" when it does not.

    Only agreement can be vacuous: a closed form that fails somewhere has told something.
    """
    if inside.failures:
        return ""
    if _restates_reference(claim):
        return "the closed form computes exactly what its reference computes: it restates it"
    if inside.points and inside.reference_varied == 0:
        return (f"the reference was the same, within its own rounding, at every one of the {inside.points} "
                "points tried: any closed form returning that constant would pass")
    return ""


def runnable(claim: Claim) -> Claim:
    """``claim`` with a closed form JAX cannot trace (NumPy code) run on the host
    (:func:`derivcheck._host.on_host_if_untraceable`, the rule of :func:`derivcheck.check`);
    any other closed form as it is. Its other errors are the check's to report. With a
    strategy the shapes are known at the first draw, where the search decides."""
    if claim.domain.strategy is not None:
        return claim
    try:
        closed_form = on_host_if_untraceable(claim.closed_form, first_bucket_avals(claim.domain))
    except Exception:  # reported by the check, as a ClaimError naming the claim
        return claim
    return claim if closed_form is claim.closed_form else dataclasses.replace(claim, closed_form=closed_form)


@scoped
def verify(
    claim: Claim,
    *,
    dtype: str = "float64",
    examples: int | None = None,
    seed: int = 0,
    profile: str = "ci",
    device: str | jax.Device | None = None,
    shrink: bool = True,
    precision: str = "highest",
    mesh: int | str = 1,
    reference_device: str | None = None,
) -> Result:
    """Check one claim in one dtype on one device and return its :class:`Result`.

    Args:
      claim: the claim; ``dataclasses.replace(claim, closed_form=...)`` works as well.
      dtype: ``"float32"`` or ``"float64"``.
      examples: Hypothesis examples (batches) beyond the fixed ones (every shape bucket
        and every input regime once);
        defaults to the profile's.
      seed: fixes the inputs (with the profile); the replay command repeats it.
      profile: ``ci``, ``dev`` or ``thorough`` (:mod:`derivcheck.profiles`).
      device: ``"cpu"``, ``"gpu"``, ``"tpu"``, a ``jax.Device``, or None for the default.
      shrink: shrink a failure to a minimal counterexample (else report the worst point
        the bulk search found, marked ``shrunk: false``).
      precision: ``"highest"`` (float32 matmuls in full float32) or ``"default"`` (the
        backend's default, e.g. TensorFloat-32 on GPUs; the tolerance accounts for it).
      mesh: shard every batch over this many devices of the platform, from ``device`` on
        (``"all"``: every one); the results are those of one device.
      reference_device: for testing, the device of the float64 reference (``"cpu:1"``);
        by default the checked device if it computes float64, else the host CPU
        (:mod:`derivcheck._placement`).
    """
    prof, examples, placement = check_arguments(profile, dtype, precision, examples, device, mesh=mesh,
                                                reference_device=reference_device)
    start = time.perf_counter()
    claim = runnable(claim)
    inside, estimated, path = _search(claim, claim.domain, dtype, prof, examples, seed, placement, shrink, precision)
    outside = None
    # Outside its condition a claim matters only if it holds inside (DESIGN.md principle 3).
    if claim.outside is not None and not inside.failures:
        outside, _, _ = _search(claim, claim.outside, dtype, prof, examples, seed, placement, shrink, precision)
    return result_of(claim, dtype, placement, inside, outside, seed=seed, profile=prof.name, examples=examples,
                     elapsed_s=time.perf_counter() - start, precision=precision,
                     replay=replay_command(claim, dtype, seed, prof.name, examples, precision,
                                           placement_options(placement)),
                     estimated_operations=estimated, closed_form_path=path)


def placement_options(placement: Placement) -> str:
    """The command-line options that reproduce ``placement``: the device where it is not
    JAX's default, the mesh, a forced reference device."""
    device = placement.device
    options = ""
    if device != jax.devices()[0]:
        options += f" --device {device.platform}:{devices_of(device.platform).index(device)}"
    options += f" --mesh {placement.width}" if placement.width > 1 else ""
    if placement.forced_reference is not None:
        options += f" --reference-device {placement.forced_reference}"
    return options


def check_arguments(profile: str, dtype: str, precision: str, examples: int | None, device, *,
                    mesh: int | str = 1, reference_device: str | None = None) -> tuple:
    """The profile, example count and placement of a check; :class:`InvalidArgument` if bad."""
    prof = profile_named(profile)
    tolerance_for(dtype)
    if precision not in PRECISIONS:
        raise InvalidArgument(f"unknown precision {precision!r}; choose {' or '.join(PRECISIONS)}")
    examples = prof.examples if examples is None else examples
    if isinstance(examples, bool) or not isinstance(examples, int) or examples < 0:
        raise InvalidArgument(f"examples must be an int >= 0, got {examples!r}")
    placement = device if isinstance(device, Placement) else placement_for(
        device, mesh=mesh, reference_device=reference_device)
    return prof, examples, placement


def result_of(claim: Claim, dtype: str, placement: Placement, inside: SearchSummary, outside: SearchSummary | None, *,
              seed: int, profile: str, examples: int, elapsed_s: float, precision: str, replay: str,
              estimated_operations: tuple[str, ...] = (), closed_form_path: str = "jit") -> Result:
    """The result record of one search (and the one outside a condition), with its verdict."""
    verdict, detail = _verdict(claim, inside, outside)
    return Result(
        id=claim.id, document=claim.document.seed, location=claim.location, dtype=dtype,
        device=describe(placement.device), reference_device=describe(placement.reference_devices[0]),
        mesh=placement.width, expected=claim.expected,
        verdict=verdict, detail=detail, points=inside.points, undecided=inside.undecided,
        unresolved=inside.unresolved,
        max_abs_error=inside.max_abs_error, max_rel_error=inside.max_rel_error,
        max_error_ratio=inside.max_error_ratio, autodiff_error=inside.autodiff_error,
        counterexample=inside.counterexample, outside=outside, seed=seed, profile=profile,
        examples=examples, elapsed_s=elapsed_s, replay=replay, jax_version=jax.__version__,
        matmul_precision=precision, ratio_histogram=inside.ratio_histogram,
        estimated_operations=estimated_operations, closed_form_path=closed_form_path,
        vacuous=vacuity(claim, inside),
    )
