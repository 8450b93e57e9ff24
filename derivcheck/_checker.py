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
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from derivcheck._bounds import evaluate_with_bound
from derivcheck._host import HostClosedForm
from derivcheck.errors import ClaimError
from derivcheck.tolerance import kink_offset, tolerance_for

__all__ = [
    "Checker", "ClaimError", "PointMetrics", "batched_checker", "explain_point", "output_names", "output_shape",
]


@dataclasses.dataclass(frozen=True)
class PointMetrics:
    """Per-point results of one batch, on the host. Every field has one entry per point."""

    failed: np.ndarray  # some element is outside tolerance, or non-finite where ref is finite
    undecided: np.ndarray  # some element's reference or bound is non-finite; no failure
    cf_nonfinite: np.ndarray
    ref_nonfinite: np.ndarray
    abs_error: np.ndarray  # max |cf - ref| over decided, finite elements
    rel_error: np.ndarray  # max |cf - ref| / |ref| over those with ref != 0
    ratio: np.ndarray  # max |cf - ref| / tolerance: above 1 fails
    autodiff_error: np.ndarray  # max |autodiff in dtype - autodiff in float64|

    def first(self, n: int) -> PointMetrics:
        """The metrics of the first ``n`` points (a batch padded beyond them)."""
        return PointMetrics(**{f.name: getattr(self, f.name)[:n] for f in dataclasses.fields(self)})


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


@functools.lru_cache(maxsize=1024)
def _traced_shape(fn, avals: tuple[jax.ShapeDtypeStruct, ...]):
    # Cached: the reference's shapes serve the float32 and the float64 run alike.
    return jax.eval_shape(fn, *avals)


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
                f"{claim_id}: output {name} is {c.dtype} from the closed form for "
                f"{dtype} inputs"
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
    programs. Other backends keep their defaults, which have not been measured here.
    """
    if platform != "cpu":
        return None
    return dict(CPU_COMPILER_OPTIONS)


#: The CPU compiler options of every checker (see :func:`_compiler_options`).
CPU_COMPILER_OPTIONS = {
    "xla_cpu_use_fusion_emitters": False,
    "xla_backend_optimization_level": 0,
    "xla_llvm_disable_expensive_passes": True,
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


@functools.lru_cache(maxsize=512)
def _closed_form_stage(closed_form: Callable[..., Any], platform: str, precision: str):
    """Batch of inputs in the checked dtype -> closed form and its error bound (rows, f64).

    Traced (on first call) under ``precision``: the key keeps the two precisions apart.
    """

    def stage(*batch):
        cf, bound = evaluate_with_bound(jax.vmap(closed_form), *batch, platform=platform)
        return _rows(cf), _rows(bound)

    return _compiled(stage, platform)


@functools.lru_cache(maxsize=512)
def _reference_stage(reference, reference_right, kinks, platform: str, precision: str):
    """Batch of float64 inputs -> the reference interval, its bound, and float32 autodiff.

    The reference is evaluated just below every kink argument (left-sided) and just above
    (right-sided, with ``reference_right`` where given). The last output is the reference
    evaluated in float32 on the inputs rounded to float32: for a float32 check these are
    its inputs exactly, and the output says how far autodiff itself lands in float32 (a
    diagnostic, never part of the tolerance). The float64 check ignores it. One stage
    serves both dtypes, so a claim's float64 reference compiles once.
    """

    def stage(*batch):
        below, above = _one_sided_inputs(batch, kinks)
        ref_lo, bound_lo = evaluate_with_bound(jax.vmap(reference), *below, platform=platform)
        if any(kinks) or reference_right is not None:
            ref_hi, bound_hi = evaluate_with_bound(jax.vmap(reference_right or reference), *above, platform=platform)
        else:
            ref_hi, bound_hi = ref_lo, bound_lo
        lo, hi = _rows(ref_lo), _rows(ref_hi)
        in_float32 = _rows(jax.vmap(reference)(*(a.astype(jnp.float32) for a in batch)))
        return jnp.minimum(lo, hi), jnp.maximum(lo, hi), jnp.maximum(_rows(bound_lo), _rows(bound_hi)), in_float32

    return _compiled(stage, platform)


def host_bound(reference_bound: jax.Array, dtype: str) -> jax.Array:
    r"""The rounding bound charged to a host (NumPy) closed form, which cannot be interpreted.

    It is the reference's own first-order bound (float64, the larger of the two sides at a
    kink) rescaled to the checked dtype: :math:`E_{ref}\,\epsilon_d / \epsilon_{64}`. Every
    rounding term of the model is linear in :math:`\epsilon`, so this is, to first order,
    the error that autodiff's computation of the same derivative makes in dtype :math:`d`:
    what a direct implementation accumulates. For float64 it is the reference's bound.
    """
    return reference_bound * (tolerance_for(dtype).eps / tolerance_for("float64").eps)


def _distance_and_tolerance(cf, cf_bound, lower, upper, ref_bound, dtype: str):
    """Per-element distance of cf from the reference interval, and its tolerance."""
    table = tolerance_for(dtype)
    distance = jnp.maximum(jnp.maximum(lower - cf, cf - upper), 0.0)
    tol = table.safety * (cf_bound + ref_bound) + table.underflow_floor
    return distance, tol


@functools.lru_cache(maxsize=16)
def _metrics_stage(dtype: str, platform: str):
    """Per-point metrics from the two sides: the only arrays that leave the device."""

    def metrics(cf, cf_bound, lower, upper, ref_bound, in_dtype):
        distance, tol = _distance_and_tolerance(cf, cf_bound, lower, upper, ref_bound, dtype)
        ref_finite = jnp.isfinite(lower) & jnp.isfinite(upper)
        # Judged wherever the truth is known; a non-finite closed form there is a failure.
        judged = ref_finite & jnp.isfinite(ref_bound)
        cf_finite = jnp.isfinite(cf)
        bad = judged & (~cf_finite | (distance > tol))
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

        def worst(x):
            return jnp.max(x, axis=1, initial=zero)

        return {
            "failed": jnp.any(bad, axis=1),
            "undecided": jnp.any(~decided, axis=1) & ~jnp.any(bad, axis=1),
            "cf_nonfinite": jnp.any(~cf_finite, axis=1),
            "ref_nonfinite": jnp.any(~ref_finite, axis=1),
            "abs_error": worst(jnp.where(compared, distance, 0.0)),
            "rel_error": worst(jnp.where(compared & (magnitude > 0), relative, 0.0)),
            "ratio": worst(jnp.where(compared, distance / tol, 0.0)),
            "autodiff_error": worst(gap),
        }

    return _compiled(metrics, platform)


@functools.lru_cache(maxsize=16)
def _elements_stage(dtype: str, platform: str):
    return _compiled(functools.partial(_distance_and_tolerance, dtype=dtype), platform)


@dataclasses.dataclass(frozen=True)
class Checker:
    """The staged checker of one claim in one dtype on one platform.

    Called with a batch of host arrays (leading axis: points) and a device; the batch is
    transferred once in the checked dtype and once widened to float64 for the reference.
    """

    closed_form: Callable[..., Any]
    reference: Callable[..., Any]
    reference_right: Callable[..., Any] | None
    kinks: tuple[tuple[float, ...], ...]
    dtype: str
    platform: str
    precision: str = "highest"

    def sides(self, arrays, device):
        wide = jax.device_put(tuple(np.asarray(a, np.float64) for a in arrays), device)
        with jax.default_matmul_precision(self.precision):
            *ref, in_float32 = _reference_stage(
                self.reference, self.reference_right, self.kinks, self.platform, self.precision)(*wide)
            if isinstance(self.closed_form, HostClosedForm):  # runs on the host: its inputs stay there
                values = self.closed_form.batch(tuple(np.asarray(a) for a in arrays))
                cf = (_rows(jax.device_put(values, device)), host_bound(ref[2], self.dtype))
            else:
                narrow = jax.device_put(tuple(arrays), device)
                cf = _closed_form_stage(self.closed_form, self.platform, self.precision)(*narrow)
        return cf, tuple(ref), (in_float32 if self.dtype == "float32" else None)

    def __call__(self, arrays, device) -> dict[str, jax.Array]:
        (cf, cf_bound), (lower, upper, ref_bound), in_dtype = self.sides(arrays, device)
        return _metrics_stage(self.dtype, self.platform)(cf, cf_bound, lower, upper, ref_bound, in_dtype)

    def elements(self, arrays, device):
        """Per-element closed form, reference interval, distance and tolerance (float64)."""
        (cf, cf_bound), (lower, upper, ref_bound), _ = self.sides(arrays, device)
        distance, tol = _elements_stage(self.dtype, self.platform)(cf, cf_bound, lower, upper, ref_bound)
        return cf, lower, upper, distance, tol


def batched_checker(closed_form, reference, reference_right, kinks, dtype: str, platform: str = "cpu",
                    precision: str = "highest") -> Checker:
    """The checker from a batch of inputs (leading axis) to per-point metrics.

    ``precision`` is the matmul precision the checked functions run at (``highest`` or
    ``default``, the backend's own); the tolerance accounts for it.
    """
    return Checker(closed_form, reference, reference_right, kinks, dtype, platform, precision)


def run_batch(checker, arrays, device) -> PointMetrics:
    """Run one batch of host arrays on ``device``; one small transfer back."""
    out = jax.device_get(checker(arrays, device))
    return PointMetrics(**{k: np.asarray(v) for k, v in out.items()})


def explain_point(checker: Checker, point, batch: int, device, out_shape) -> dict[str, Any]:
    """Where one point fails worst: which output, which element, the values and tolerance.

    The point is tiled to the bulk batch size, so the compiled stages are reused as they are.
    """
    arrays = tuple(np.broadcast_to(a, (batch, *np.shape(a))).copy() for a in point)
    cf, lower, upper, distance, tol = (np.asarray(v)[0] for v in checker.elements(arrays, device))
    names, shapes = output_names(out_shape), [leaf.shape for leaf in jax.tree_util.tree_leaves(out_shape)]
    finite = np.isfinite(cf) & np.isfinite(lower) & np.isfinite(upper)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        score = np.where(finite, distance / tol, np.inf)
    k = int(np.argmax(score))
    offsets = np.cumsum([0, *(int(np.prod(s, dtype=int)) for s in shapes)])
    leaf = int(np.searchsorted(offsets, k, side="right") - 1)
    index = np.unravel_index(k - offsets[leaf], shapes[leaf]) if shapes[leaf] else ()
    ref = float(lower[k]) if lower[k] == upper[k] else [float(lower[k]), float(upper[k])]
    return {
        "output": names[leaf],
        "index": [int(i) for i in index],
        "closed_form": float(cf[k]),
        "reference": ref,
        "abs_error": float(distance[k]),
        "tolerance": float(tol[k]),
    }
