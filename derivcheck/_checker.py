"""The batched checker: many points per call, compiled once per claim, dtype and shape.

For one point the closed form runs in the checked dtype and the reference in float64 on
the same (widened) inputs, both under the error-bound interpreter. At kinks the reference
is evaluated one step to each side (:func:`derivcheck.tolerance.kink_offset`) and the
closed form must lie between the two one-sided values. Everything is reduced to a few
numbers per point on the device; the host receives one small array per metric.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from derivcheck import _stage_store
from derivcheck._bounds import at_a_tie, evaluate_with_bound, recording_estimates
from derivcheck._composed import Composed
from derivcheck._host import HostClosedForm
from derivcheck._narrow import NarrowArithmetic, narrow_arithmetic
from derivcheck._stage_store import Unkeyable, digest_of, jaxpr_of, traced
from derivcheck._timing import phase
from derivcheck.errors import ClaimError
from derivcheck.tolerance import LOW_PRECISION, kink_offset, largest, tolerance_for

__all__ = [
    "Checker", "ClaimError", "PointMetrics", "batched_checker", "explain_point", "output_names", "output_shape",
]


@dataclasses.dataclass(frozen=True)
class PointMetrics:
    """Per-point results of one batch, on the host. Every field has one entry per point."""

    failed: np.ndarray  # some element is outside tolerance, or non-finite where ref is finite
    undecided: np.ndarray  # some element's reference or bound is non-finite; no failure
    #: undecided only because the closed form's own arithmetic fixes nothing there: 0/0 of
    #: values its dtype rounded to zero (a bfloat16 direction of a tiny gradient), where the
    #: truth is known
    unresolved: np.ndarray
    cf_nonfinite: np.ndarray
    ref_nonfinite: np.ndarray
    abs_error: np.ndarray  # max |cf - ref| over decided, finite elements
    rel_error: np.ndarray  # max |cf - ref| / |ref| over those with ref != 0
    ratio: np.ndarray  # max |cf - ref| / tolerance: above 1 fails
    autodiff_error: np.ndarray  # max |autodiff in dtype - autodiff in float64|
    #: the reference differs from the batch's first point beyond both rounding bounds
    #: (a reference that never does is constant: DESIGN.md principle 9)
    ref_varies: np.ndarray

    def rows(self, start: int, stop: int) -> PointMetrics:
        """The metrics of points ``start`` to ``stop - 1``."""
        return PointMetrics(**{f.name: getattr(self, f.name)[start:stop] for f in dataclasses.fields(self)})


def _one_sided_inputs(args, kinks: tuple[tuple[float, ...], ...]):
    """The float64 inputs stepped just below and just above every kink coordinate."""
    below, above = [], []
    for x, points in zip(args, kinks):
        if not points:
            below.append(x)
            above.append(x)
            continue
        on_kink = jnp.isin(x, jnp.asarray(points, x.dtype))
        step = kink_offset(x, jnp)
        below.append(jnp.where(on_kink, x - step, x))
        above.append(jnp.where(on_kink, x + step, x))
    return below, above


#: How far a tie point is moved to take a one-sided truth (:func:`_moved_inputs`), in
#: float64 ulps of each element: far enough that elements moved by different amounts stop
#: being equal, near enough that a smooth derivative moves by ~1e-14 of itself.
SIDED_ULPS = 64
# Moved elements at 0 move by this much at least: a normal float64 even times a drawn
# direction element (>= 1e-8 in magnitude), never a subnormal XLA may flush.
_SIDED_FLOOR = 2.0**-960


def _moved_inputs(args, sided):
    """The float64 inputs moved to each side of a tie: argument k by ``m * step`` where its
    spec is ``(m, None)``, or along argument j (a tangent) by ``step * args[j]`` where it is
    ``(m, j)``; step is :data:`SIDED_ULPS` ulps of each element."""
    below, above = [], []
    eps = float(np.finfo(np.float64).eps)
    for x, spec in zip(args, sided):
        if spec is None:
            below.append(x)
            above.append(x)
            continue
        multiplier, along = spec
        step = jnp.maximum(jnp.abs(x), _SIDED_FLOOR) * (SIDED_ULPS * eps)
        step = step * (args[along] if along is not None else multiplier)
        below.append(x - step)
        above.append(x + step)
    return below, above


def _traced_shape(fn, avals: tuple[jax.ShapeDtypeStruct, ...]):
    # Traced once: the reference's shapes serve the float32 and the float64 run alike, and
    # the trace serves the stages' keys (:func:`derivcheck._stage_store.jaxpr_of`).
    return traced(fn, *avals)[1]


def output_shape(fn, avals: tuple[jax.ShapeDtypeStruct, ...]):
    """The shapes and dtypes ``fn`` returns for inputs ``avals`` (a host closed form is called)."""
    if isinstance(fn, HostClosedForm):
        return fn.output_shape(avals)
    return _traced_shape(fn, avals)


def validate_outputs(claim_id: str, closed_form, reference, args, dtype: str) -> None:
    """Raise :class:`ClaimError` unless both sides return matching pytrees of ``dtype``."""
    try:
        cf_shape = output_shape(closed_form, tuple(args))
    except Exception as exc:  # a closed form that cannot even be traced
        raise ClaimError(f"{claim_id}: the closed form raised {type(exc).__name__}: {exc}") from exc
    wide = tuple(jax.ShapeDtypeStruct(a.shape, jnp.float64) for a in args)
    try:
        ref_shape = output_shape(reference, wide)
    except Exception as exc:
        raise ClaimError(f"{claim_id}: the reference raised {type(exc).__name__}: {exc}") from exc
    cf_leaves, cf_tree = jax.tree_util.tree_flatten(cf_shape)
    ref_leaves, ref_tree = jax.tree_util.tree_flatten(ref_shape)
    if cf_tree != ref_tree:
        raise ClaimError(f"{claim_id}: closed form returns {cf_tree}, reference {ref_tree}")
    for name, c, r in zip(output_names(cf_shape), cf_leaves, ref_leaves):
        if c.shape != r.shape:
            raise ClaimError(
                f"{claim_id}: output {name} has shape {c.shape} from the closed form "
                f"but {r.shape} from the reference"
            )
        if c.dtype != jnp.dtype(dtype):
            raise ClaimError(
                f"{claim_id}: the closed form returns {c.dtype} for {dtype} inputs (output {name}); "
                f"cast with .astype(x.dtype)"
            )


def output_names(tree) -> list[str]:
    """Readable names of a pytree's leaves: ``dW1``, ``[0]``, or ``output``."""
    paths = jax.tree_util.tree_flatten_with_path(tree)[0]
    names = []
    for path, _ in paths:
        name = "".join(
            str(getattr(k, "key", getattr(k, "idx", getattr(k, "name", k)))) if i == 0
            else f"[{getattr(k, 'key', getattr(k, 'idx', k))}]"
            for i, k in enumerate(path)
        )
        names.append(name or "output")
    return names


def _compiler_options(platform: str) -> dict[str, Any] | None:
    """XLA options for the checkers on the CPU: compile fast, since compiling is the cost.

    A 128-point batch runs in about a millisecond while compiling its checker takes a
    second: on the CPU, compile time is what counts. Measured on the largest claim's
    reference stage (jax 0.10.2, `derivcheck bench --compile`): XLA's newer CPU fusion
    emitters take 1.0 s to compile it, the classic emitters 0.35 s, with the same run time
    and the same values; the lowest LLVM optimization level saves a little more on larger
    programs. One LLVM module per program (no parallel code generation) maps half as many
    memory regions per executable at the same compile time (4 claims' self-test: 1,290
    mappings and 7.3 s against 619 and 7.0 s): many live executables (the self-test's
    planted faults) stay far from the kernel's limit on mappings (see
    :data:`CLOSED_FORM_STAGES`). Other backends keep their defaults, which have not been
    measured here.
    """
    if platform != "cpu":
        return None
    return dict(CPU_COMPILER_OPTIONS)


#: The CPU compiler options of every checker (see :func:`_compiler_options`).
CPU_COMPILER_OPTIONS = {
    "xla_cpu_use_fusion_emitters": False,
    "xla_backend_optimization_level": 0,
    "xla_llvm_disable_expensive_passes": True,
    "xla_cpu_parallel_codegen_split_count": 1,
}


def _compiled(fn: Callable[..., Any], platform: str) -> Callable[..., Any]:
    return jax.jit(fn, compiler_options=_compiler_options(platform))


def _row_width(size: int) -> int:
    """Rows are padded to a power of two (at least 8), so that the comparison stages
    compile once per dtype and width bucket rather than once per claim's output size."""
    return max(8, 1 << max(size - 1, 0).bit_length())


def _rows(tree) -> jax.Array:
    """A batched pytree as one float64 row per point (leaves flattened and concatenated),
    zero-padded to :func:`_row_width`. A padded element is 0 on every side, with a zero
    bound: it is always within tolerance and adds nothing to any metric."""
    leaves = jax.tree_util.tree_leaves(tree)
    row = jnp.concatenate([jnp.reshape(leaf, (leaf.shape[0], -1)).astype(jnp.float64) for leaf in leaves], axis=1)
    return jnp.pad(row, ((0, 0), (0, _row_width(row.shape[1]) - row.shape[1])))


# The checker runs in compiled stages, each cached on its own: a claim whose closed form
# changes (a user's replacement, a planted fault) recompiles only its closed form; claims
# that share a reference share its compilation, and so do the float32 and float64 runs of
# one claim, since the reference always runs in float64. Each stage takes the whole batch:
# the error-bound interpreter walks the jaxpr of the vmapped function, which traces and
# lowers faster than vmapping the interpreter. Intermediate results stay on the device;
# only the per-point metrics are transferred.


#: How many compiled stages of each kind stay cached. A stage holds one executable per
#: input shape and dtype it has met, each a few memory mappings (30 to 70 a stage); the
#: self-test compiles a closed-form stage per planted fault, and an unbounded number of
#: live executables runs a process into the kernel's limit on mappings (65,530), where
#: XLA's compiler crashes. References are shared (by both dtypes, by a claim's planted
#: faults, by the tests of one claim) and the bundled catalog has about 100: all stay. A
#: closed form is rarely met again once its claim is done.
CLOSED_FORM_STAGES = 64
REFERENCE_STAGES = 256


@dataclasses.dataclass(eq=False)
class _Stage:
    """A compiled stage and the operations whose bound was estimated
    (:func:`derivcheck._bounds._estimated`) when it was traced; cached, and dropped, together.

    With a stage store (:mod:`derivcheck._stage_store`), ``parts`` says at a batch what the
    stage is made from; its executable for the batch's shapes is then loaded from the store
    where one was kept, with what its tracing told, instead of traced, interpreted and
    compiled, and kept there when compiled."""

    run: Callable[..., Any]
    estimated: set[str]
    parts: Callable[..., tuple[str, ...]] | None = None
    loaded: dict[tuple, Callable[..., Any]] = dataclasses.field(default_factory=dict)

    def __call__(self, *batch):
        stored = _stage_store.store()
        device = _single_device(batch) if stored is not None and self.parts is not None else None
        if device is None:
            return self.run(*batch)
        leaves, tree = jax.tree_util.tree_flatten(batch)  # a change serves outputs of any names
        signature = (device.id, tree, _signature(leaves))
        compiled = self.loaded.get(signature)
        if compiled is None:
            inputs = f"{tree}:{signature[2]}"
            compiled = self.loaded[signature] = self._load_or_compile(stored, device, batch, inputs)
        return compiled(*batch)

    def _load_or_compile(self, stored: _stage_store.StageStore, device, batch, inputs: str) -> Callable[..., Any]:
        try:
            with phase("trace"):
                key = stored.key(device, (*self.parts(*batch), inputs))
        except Exception:  # no key (a host callback), or the stage's own error, raised by it
            return self.run
        with phase("load stored stage"):
            found = stored.load(key, device)
        if found is not None:
            compiled, told = found
            self._absorb(told, batch)
            return compiled
        with recording_estimates() as names:  # what this trace estimates, kept with its executable
            lowered = self.run.lower(*batch)
        return stored.compile(key, lowered, lambda: self._told(names, batch))

    def _told(self, estimated: set[str], batch) -> dict[str, Any]:
        return {"estimated": sorted(estimated)}

    def _absorb(self, told: dict[str, Any], batch) -> None:
        self.estimated.update(told["estimated"])


def _single_device(batch) -> jax.Device | None:
    """The one device every array of ``batch`` is on, or None (a mesh, host values)."""
    devices = set()
    for leaf in jax.tree_util.tree_leaves(batch):
        if not isinstance(leaf, jax.Array) or len(leaf.sharding.device_set) != 1:
            return None
        devices |= leaf.sharding.device_set
    return devices.pop() if len(devices) == 1 else None


def _one_point(batch) -> tuple:
    """Shapes and dtypes of one point of ``batch`` (pytrees with a leading batch axis)."""
    return jax.tree_util.tree_map(lambda a: jax.ShapeDtypeStruct(a.shape[1:], a.dtype), tuple(batch))


def _batched(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` over a leading batch axis: ``vmap``, or a sequential map where ``fn`` cannot be
    vmapped (a ``pure_callback`` without a ``vmap_method``)."""
    vmapped = jax.vmap(fn)

    def batched(*batch):
        try:
            return vmapped(*batch)
        except NotImplementedError as exc:
            if "vmap_method" not in str(exc):
                raise
            return jax.lax.map(lambda args: fn(*args), batch)

    return batched


def _traced_with_bound(fn, batch, platform: str, estimated_into: set[str], narrow=None, **kwargs):
    with recording_estimates() as estimated, phase("bound interpreter"):
        out = evaluate_with_bound(_batched(fn), *batch, platform=platform, narrow=narrow, **kwargs)
    estimated_into |= estimated
    return out


@functools.lru_cache(maxsize=CLOSED_FORM_STAGES)
def _closed_form_stage(closed_form: Callable[..., Any], platform: str, precision: str,
                       narrow: NarrowArithmetic | None = None):
    """Batch of inputs in the checked dtype -> closed form and its error bound (rows, f64).

    Traced (on first call) under ``precision``: the key keeps the two precisions apart.
    ``narrow``: how the platform computes the checked bfloat16 or float16 (its probe).
    A closed form built from another (:mod:`derivcheck._composed`) runs that one's compiled
    outputs through its own compiled change (:func:`_composed_stage`).
    """
    if isinstance(closed_form, Composed):
        return _composed_stage(closed_form, platform, precision, narrow)

    estimated: set[str] = set()

    def closed_form_stage(*batch):
        cf, bound = _traced_with_bound(closed_form, batch, platform, estimated, narrow)
        return _rows(cf), _rows(bound)

    def parts(*batch):
        return ("closed form", jaxpr_of(closed_form, *_one_point(batch)), platform, precision, digest_of(narrow))

    return _Stage(_compiled(closed_form_stage, platform), estimated, parts)


@dataclasses.dataclass(eq=False)
class _OutputsStage(_Stage):
    """A closed form's outputs and bounds as pytrees, and per input shapes which output
    bounds are exactly zero (known once traced; :func:`derivcheck._bounds.evaluate_with_bound`)."""

    exact: dict[tuple, tuple[bool, ...]] = dataclasses.field(default_factory=dict)

    def _told(self, estimated: set[str], batch) -> dict[str, Any]:
        return {**super()._told(estimated, batch), "exact": self.exact[_signature(batch)]}

    def _absorb(self, told: dict[str, Any], batch) -> None:
        super()._absorb(told, batch)
        self.exact[_signature(batch)] = tuple(told["exact"])


@functools.lru_cache(maxsize=CLOSED_FORM_STAGES)
def _outputs_stage(closed_form, platform: str, precision: str, narrow: NarrowArithmetic | None):
    """Batch of inputs -> the closed form's outputs and their bounds, as pytrees: the part
    of :func:`_closed_form_stage` that every change of its outputs shares."""
    estimated: set[str] = set()
    exact: dict[tuple, tuple[bool, ...]] = {}

    def outputs_stage(*batch):
        flags: list[bool] = []
        out = _traced_with_bound(closed_form, batch, platform, estimated, narrow, exact=flags)
        exact[_signature(batch)] = tuple(flags)
        return out

    def parts(*batch):
        return ("outputs", jaxpr_of(closed_form, *_one_point(batch)), platform, precision, digest_of(narrow))

    return _OutputsStage(_compiled(outputs_stage, platform), estimated, parts, exact=exact)


def _signature(batch) -> tuple:
    return tuple((tuple(a.shape), str(a.dtype)) for a in batch)


@functools.lru_cache(maxsize=CLOSED_FORM_STAGES)
def _change_stage(change, exact: tuple[bool, ...], platform: str, precision: str,
                  narrow: NarrowArithmetic | None):
    """Outputs and bounds of a closed form -> ``change`` of them and its bound (rows): the
    rest of the joint computation, bounded from the bounds it is given. Keyed by the change's
    value, it is compiled once per output shapes, whatever closed form it changes."""
    estimated: set[str] = set()

    def change_stage(out, bound):
        errors = [None if zero else b for b, zero in zip(jax.tree_util.tree_leaves(bound), exact)]
        changed, changed_bound = _traced_with_bound(change, (out,), platform, estimated, narrow, errors=errors)
        return _rows(changed), _rows(changed_bound)

    def parts(out, bound):
        return ("change", jaxpr_of(change, *_one_point((out,))), repr(exact), platform, precision, digest_of(narrow))

    return _Stage(_compiled(change_stage, platform), estimated, parts)


def _composed_stage(closed_form: Composed, platform: str, precision: str,
                    narrow: NarrowArithmetic | None) -> _Stage:
    """The closed-form stage of ``change(base(reordered x))``: the base's outputs stage
    (compiled once for every change of it) followed by the change's stage. Bounded in two
    parts from the same rules, operation by operation, as in one."""
    outputs = _outputs_stage(closed_form.base, platform, precision, narrow)
    estimated: set[str] = set()

    def run(*batch):
        batch = closed_form.arguments(batch)
        out, bound = outputs(*batch)
        changed = _change_stage(closed_form.change, outputs.exact[_signature(batch)], platform, precision, narrow)
        result = changed(out, bound)
        estimated.update(outputs.estimated, changed.estimated)
        return result

    return _Stage(run, estimated)


@functools.lru_cache(maxsize=REFERENCE_STAGES)
def _reference_stage(reference, reference_right, kinks, platform: str, precision: str, sided=None):
    """Batch of float64 inputs -> the reference interval, its bound, and float32 autodiff.

    The reference is evaluated just below every kink argument (left-sided) and just above
    (right-sided, with ``reference_right`` where given). The last output is the reference
    evaluated in float32 on the inputs rounded to float32: for a float32 check these are
    its inputs exactly, and the output says how far autodiff itself lands in float32 (a
    diagnostic, never part of the tolerance). The float64 check ignores it. One stage
    serves both dtypes, so a claim's float64 reference compiles once.

    With ``sided`` (a user's check), kinks are also found where they are: at a point where
    the reference passes through a tie (:func:`derivcheck._bounds.at_a_tie`), autodiff's
    value is a convention, so the truth there is the interval spanned by the reference at
    the point moved to either side (:func:`_moved_inputs`), joined with the value itself.
    """

    estimated: set[str] = set()

    def reference_stage(*batch):
        below, above = _one_sided_inputs(batch, kinks)
        ref_lo, bound_lo = _traced_with_bound(reference, below, platform, estimated)
        if any(kinks) or reference_right is not None:
            ref_hi, bound_hi = _traced_with_bound(reference_right or reference, above, platform, estimated)
        else:
            ref_hi, bound_hi = ref_lo, bound_lo
        lo, hi = _rows(ref_lo), _rows(ref_hi)
        bound = jnp.maximum(_rows(bound_lo), _rows(bound_hi))
        lo, hi = jnp.minimum(lo, hi), jnp.maximum(lo, hi)
        if sided is not None:
            tie = jax.vmap(functools.partial(at_a_tie, reference))(*batch)[:, None]
            minus, plus = _moved_inputs(batch, sided)
            (r_minus, b_minus), (r_plus, b_plus) = (_traced_with_bound(reference, moved, platform, estimated)
                                                    for moved in (minus, plus))
            r_minus, r_plus = _rows(r_minus), _rows(r_plus)
            lo = jnp.where(tie, jnp.minimum(lo, jnp.minimum(r_minus, r_plus)), lo)
            hi = jnp.where(tie, jnp.maximum(hi, jnp.maximum(r_minus, r_plus)), hi)
            bound = jnp.where(tie, jnp.maximum(bound, jnp.maximum(_rows(b_minus), _rows(b_plus))), bound)
        in_float32 = _rows(_float32_diagnostic(reference, batch, lo))
        return lo, hi, bound, in_float32

    def parts(*batch):
        point = _one_point(batch)
        try:
            in_float32 = jaxpr_of(reference, *(jax.ShapeDtypeStruct(a.shape, jnp.float32) for a in point))
        except Unkeyable:
            raise
        except Exception:  # no float32 diagnostic (:func:`_float32_diagnostic`)
            in_float32 = "none"
        # The right side, where it is the reference itself, and the ties, found in the
        # reference, are traced from the same function at the same shapes: no other key.
        return ("reference", jaxpr_of(reference, *point),
                "right: " + (jaxpr_of(reference_right, *point) if reference_right is not None else "itself"),
                in_float32, digest_of(kinks), digest_of(sided), platform, precision)

    return _Stage(_compiled(reference_stage, platform), estimated, parts)


def _float32_diagnostic(reference, batch, like):
    """The reference run in float32 on the inputs rounded to float32 (a diagnostic only).

    A reference that cannot run in float32 (a float64 NumPy constant mixed into a float32
    operation, a dtype-fixed callback) gets NaN rows: the diagnostic is then not shown, and
    the check itself never depends on it.
    """
    try:
        return _batched(reference)(*(a.astype(jnp.float32) for a in batch))
    except Exception:
        return jnp.full_like(like, jnp.nan)


def host_bound(reference_bound: jax.Array, dtype: str) -> jax.Array:
    r"""The floor of the rounding bound charged to a host (NumPy) closed form.

    A host closed form is charged the larger of its own measured rounding
    (:meth:`HostClosedForm.rounding_spread`) and this floor: the reference's first-order
    bound (float64, the larger of the two sides at a kink) rescaled to the checked dtype,
    :math:`E_{ref}\,\epsilon_d / \epsilon_{64}`, the error autodiff's own computation of the
    derivative would make in dtype :math:`d` (every rounding term is linear in
    :math:`\epsilon`). The floor covers a point where every measured sample rounded nearly
    exactly.
    """
    return reference_bound * (tolerance_for(dtype).eps / tolerance_for("float64").eps)


def _distance_and_tolerance(cf, cf_bound, lower, upper, ref_bound, dtype: str):
    """Per-element distance of cf from the reference interval, its tolerance, and where the
    truth is undetermined (:func:`undetermined`)."""
    table = tolerance_for(dtype)
    distance = jnp.maximum(jnp.maximum(lower - cf, cf - upper), 0.0)
    tol = table.safety * (cf_bound + ref_bound) + table.underflow_floor
    return distance, tol, undetermined(lower, upper, ref_bound)


def _excused(cf, tol, unknown, xp=jnp):
    """Non-finite closed-form elements that are undecided rather than failed: where the truth
    is undetermined (:func:`undetermined`), or where its own bound is infinite (its
    arithmetic divided rounded zeros, 0/0, or by one, x/0, which its bound admits: a
    bfloat16 direction of a gradient below bfloat16's resolution, a float16 one whose
    squares underflowed). An overflow where the truth is in range (an infinity, or NaN
    after one: its bound is NaN, derivcheck._bounds._rounding) fails as ever."""
    return unknown | (~xp.isfinite(cf) & (tol == xp.inf))


#: A reference bound above this many float64 smallest normals is more than the underflow
#: floors exact arithmetic is charged (one smallest normal an operation, _bounds._rounding).
_EXACT_FLOORS = 64


def undetermined(lower, upper, ref_bound):
    r"""Where the truth is zero within its own rounding: both one-sided values within
    :math:`S E_{ref}` of 0, :math:`|lo|, |hi| \le S E_{ref}`, with :math:`E_{ref}` beyond the
    underflow floors. There the float64 reference has not even fixed the sign (a direction
    :math:`\delta / \lVert\delta\rVert` at a :math:`\delta` that is 0 up to rounding), and a
    non-finite closed form (0/0 in its own dtype) is undecided, not failed. A kink's interval
    that merely contains 0 (ReLU's [0, 1]) is known. A finite closed form is compared as
    always."""
    reach = tolerance_for("float64").safety * ref_bound
    floor = _EXACT_FLOORS * float(np.finfo(np.float64).tiny)
    return (jnp.abs(lower) <= reach) & (jnp.abs(upper) <= reach) & (reach > floor)


@functools.lru_cache(maxsize=16)
def _metrics_stage(dtype: str, platform: str):
    """Per-point metrics from the two sides: the only arrays that leave the device."""

    def metrics(cf, cf_bound, lower, upper, ref_bound, in_dtype):
        distance, tol, unknown = _distance_and_tolerance(cf, cf_bound, lower, upper, ref_bound, dtype)
        ref_finite = jnp.isfinite(lower) & jnp.isfinite(upper)
        # Judged wherever the truth is known and representable in the checked dtype; a
        # non-finite closed form there is a failure. Beyond the dtype's range (e**89 in
        # float32) the correctly rounded value is inf: the point is undecided, not failed.
        representable = jnp.maximum(jnp.abs(lower), jnp.abs(upper)) <= largest(dtype)
        judged = ref_finite & jnp.isfinite(ref_bound) & representable
        cf_finite = jnp.isfinite(cf)
        bad = judged & ((~cf_finite & ~_excused(cf, tol, unknown)) | (distance > tol))
        # A finite closed form whose own bound overflowed cannot be compared either.
        compared = judged & cf_finite & jnp.isfinite(tol)
        decided = compared | bad
        magnitude = jnp.maximum(jnp.abs(lower), jnp.abs(upper))
        relative = distance / jnp.where(magnitude > 0, magnitude, 1.0)
        if in_dtype is None:  # float64: autodiff in the checked dtype is the reference itself
            gap = jnp.zeros_like(cf)
        else:
            gap = jnp.where(compared & jnp.isfinite(in_dtype), jnp.abs(in_dtype - 0.5 * (lower + upper)), 0.0)
        zero = jnp.zeros((), jnp.float64)
        # Against the first point, element by element, beyond both points' rounding bounds:
        # rounding noise around a constant (a sum of softmax outputs) is not variation.
        middle = 0.5 * (lower + upper)
        spread = jnp.abs(middle - middle[:1])
        noise = 2 * tolerance_for("float64").safety * (ref_bound + ref_bound[:1]) + tolerance_for(dtype).underflow_floor
        both = jnp.isfinite(middle) & jnp.isfinite(middle[:1]) & jnp.isfinite(noise)
        varies = jnp.any(both & (spread > noise), axis=1) | jnp.any(jnp.isfinite(middle) != jnp.isfinite(middle[:1]),
                                                                    axis=1)

        def worst(x):
            return jnp.max(x, axis=1, initial=zero)

        undecided = jnp.any(~decided, axis=1) & ~jnp.any(bad, axis=1)
        own_zeros = judged & ~unknown & ~cf_finite & (tol == jnp.inf)
        return {
            "failed": jnp.any(bad, axis=1),
            "undecided": undecided,
            "unresolved": undecided & jnp.all(decided | own_zeros, axis=1),
            "cf_nonfinite": jnp.any(~cf_finite, axis=1),
            "ref_nonfinite": jnp.any(~ref_finite, axis=1),
            "abs_error": worst(jnp.where(compared, distance, 0.0)),
            "rel_error": worst(jnp.where(compared & (magnitude > 0), relative, 0.0)),
            # A failure that could not be measured (a non-finite closed form) is infinitely off.
            "ratio": worst(jnp.where(compared, distance / tol, jnp.where(bad, jnp.inf, 0.0))),
            "autodiff_error": worst(gap),
            "ref_varies": varies,
        }

    return _compiled(metrics, platform)


@functools.lru_cache(maxsize=16)
def _faithful_stage(dtype: str, platform: str):
    """Whether NumPy's values and those of its tracing into JAX agree within both bounds,
    wherever both are finite: then the tracing computes what NumPy computes."""

    def faithful(values, traced, bound):
        tol = tolerance_for(dtype)
        both = jnp.isfinite(values) & jnp.isfinite(traced)
        same_finiteness = jnp.isfinite(values) == jnp.isfinite(traced)
        close = jnp.abs(values - traced) <= 2 * tol.safety * bound + tol.underflow_floor
        return jnp.all(same_finiteness & (close | ~both))

    return _compiled(faithful, platform)


@functools.lru_cache(maxsize=16)
def _elements_stage(dtype: str, platform: str):
    return _compiled(functools.partial(_distance_and_tolerance, dtype=dtype), platform)


@dataclasses.dataclass(frozen=True)
class Checker:
    """The staged checker of one claim in one dtype on one platform.

    Called with a batch of host arrays (leading axis: points) and a
    :class:`~derivcheck._placement.Placement`; the batch is transferred once in the checked
    dtype to the checked devices and once widened to float64 to the reference's.
    """

    closed_form: Callable[..., Any]
    reference: Callable[..., Any]
    reference_right: Callable[..., Any] | None
    kinks: tuple[tuple[float, ...], ...]
    dtype: str
    platform: str
    precision: str = "highest"
    #: Per argument, how it moves to either side of a tie found in the reference
    #: (:func:`_moved_inputs`); None: only declared kinks.
    sided: tuple | None = None
    #: Where the float64 reference runs, when not on ``platform`` (:mod:`derivcheck._placement`).
    reference_platform: str | None = None

    def estimated_operations(self) -> tuple[str, ...]:
        """Operations whose bound was measured, not derived, in either stage traced so far;
        ``host closed form`` for a closed form run on the host."""
        host = isinstance(self.closed_form, HostClosedForm)
        closed_form = self.closed_form.through_jax if host else self.closed_form
        names = set(_closed_form_stage(closed_form, self.platform, self.precision, self.narrow).estimated)
        names |= self._reference().estimated
        if host and not self.closed_form.traced_faithful:
            names.add("host closed form (rounding measured)")
        return tuple(sorted(names))

    @property
    def narrow(self) -> NarrowArithmetic | None:
        """How the platform computes the checked dtype, where it is bfloat16 or float16: the
        bound charges what its probe found (:mod:`derivcheck._narrow`)."""
        return narrow_arithmetic(self.platform, self.dtype) if self.dtype in LOW_PRECISION else None

    def _reference(self) -> _Stage:
        return _reference_stage(self.reference, self.reference_right, self.kinks,
                                self.reference_platform or self.platform, self.precision, self.sided)

    def sides(self, arrays, placement):
        """Both sides of one batch: the reference on its devices (moved to the checked ones
        after), the closed form on the checked devices (:class:`derivcheck._placement.Placement`)."""
        wide = placement.put_reference(tuple(np.asarray(a, np.float64) for a in arrays))
        with jax.default_matmul_precision(self.precision):
            # The float32 autodiff diagnostic runs with the reference: where that is the host,
            # it tells how float32 autodiff lands there.
            *ref, in_float32 = placement.to_checked(self._reference()(*wide))
            if isinstance(self.closed_form, HostClosedForm):  # runs on the host: its inputs stay there
                cf = self._host_side(arrays, placement, ref[2])
            else:
                narrow = placement.put(tuple(arrays))
                cf = _closed_form_stage(self.closed_form, self.platform, self.precision, self.narrow)(*narrow)
        return cf, tuple(ref), (in_float32 if self.dtype == "float32" else None)

    def _host_side(self, arrays, placement, reference_bound):
        """A host closed form's values (NumPy) and bound: interpreted from its tracing into
        JAX where that computes its values, else measured (:mod:`derivcheck._host`)."""
        host_cf = self.closed_form
        host = tuple(np.asarray(a) for a in arrays)
        values = _rows(placement.put(host_cf.batch(host)))
        if host_cf.traceable(tuple(jax.ShapeDtypeStruct(a.shape[1:], a.dtype) for a in host)):
            traced, bound = _closed_form_stage(host_cf.through_jax, self.platform, self.precision, self.narrow)(
                *placement.put(tuple(arrays)))
            if bool(_faithful_stage(self.dtype, self.platform)(values, traced, bound)):
                host_cf.traced_faithful = True
                return values, bound
            host_cf.traced_faithful = False
        spread = _rows(placement.put(host_cf.rounding_spread(host, self.dtype)))
        return values, jnp.maximum(host_bound(reference_bound, self.dtype), spread)

    def __call__(self, arrays, placement) -> dict[str, jax.Array]:
        (cf, cf_bound), (lower, upper, ref_bound), in_dtype = self.sides(arrays, placement)
        return _metrics_stage(self.dtype, self.platform)(cf, cf_bound, lower, upper, ref_bound, in_dtype)

    def elements(self, arrays, placement):
        """Per-element closed form, reference interval, distance, tolerance (float64) and
        where the truth is undetermined."""
        (cf, cf_bound), (lower, upper, ref_bound), _ = self.sides(_padded(arrays, placement.width), placement)
        distance, tol, unknown = _elements_stage(self.dtype, self.platform)(cf, cf_bound, lower, upper, ref_bound)
        return cf, lower, upper, distance, tol, unknown


def batched_checker(closed_form, reference, reference_right, kinks, dtype: str, platform: str = "cpu",
                    precision: str = "highest", sided: tuple | None = None,
                    reference_platform: str | None = None) -> Checker:
    """The checker from a batch of inputs (leading axis) to per-point metrics.

    ``precision`` is the matmul precision the checked functions run at (``highest`` or
    ``default``, the backend's own); the tolerance accounts for it. ``reference_platform``:
    where the reference runs, if not on ``platform``.
    """
    return Checker(closed_form, reference, reference_right, kinks, dtype, platform, precision, sided,
                   reference_platform)


def _padded(arrays, width: int):
    """The batch with rows appended (copies of its last) up to a multiple of ``width``, so
    that a mesh shares it evenly; every point is computed on its own, so the added rows
    change no other row."""
    n = len(arrays[0])
    extra = -n % width
    if not extra:
        return arrays
    return tuple(np.concatenate([a, np.repeat(a[-1:], extra, axis=0)]) for a in arrays)


def run_batch(checker, arrays, placement) -> PointMetrics:
    """Run one batch of host arrays where ``placement`` says; one small transfer back."""
    n = len(arrays[0])
    with phase("execute"):
        out = jax.device_get(checker(_padded(arrays, placement.width), placement))
    return PointMetrics(**{k: np.asarray(v)[:n] for k, v in out.items()})


def explain_point(checker: Checker, point, batch: int, placement, out_shape) -> dict[str, Any]:
    """Where one point fails worst: which output, which element, the values and tolerance.

    The point is tiled to the bulk batch size, so the compiled stages are reused as they are.
    """
    arrays = tuple(np.broadcast_to(a, (batch, *np.shape(a))).copy() for a in point)
    with phase("execute"):
        cf, lower, upper, distance, tol, unknown = (np.asarray(v)[0] for v in checker.elements(arrays, placement))
    names, shapes = output_names(out_shape), [leaf.shape for leaf in jax.tree_util.tree_leaves(out_shape)]
    truth_known = np.isfinite(lower) & np.isfinite(upper)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        # Only compared elements can be the worst; a non-finite closed form where the
        # truth is known is the worst of all, whatever its own (then non-finite) bound.
        score = np.where(truth_known & ~np.isfinite(cf), np.where(_excused(cf, tol, unknown, np), -1.0, np.inf),
                         np.where(truth_known & np.isfinite(tol), distance / tol, -1.0))
    offsets = np.cumsum([0, *(int(np.prod(s, dtype=int)) for s in shapes)])
    k = int(np.argmax(score[:offsets[-1]]))  # never a padding element
    leaf = int(np.searchsorted(offsets, k, side="right") - 1)
    index = np.unravel_index(k - offsets[leaf], shapes[leaf]) if shapes[leaf] else ()
    ref = float(lower[k]) if lower[k] == upper[k] else [float(lower[k]), float(upper[k])]
    return {
        "output": names[leaf],
        "index": [int(i) for i in index],
        "closed_form": float(cf[k]),
        "reference": ref,
        # A closed form that is non-finite where the truth is known is infinitely off, as in
        # the batch metrics; its NaN distance is never shown as a number.
        "abs_error": float(distance[k]) if np.isfinite(cf[k]) else math.inf,
        "tolerance": float(tol[k]),
    }
