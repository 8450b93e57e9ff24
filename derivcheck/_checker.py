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
from derivcheck.tolerance import kink_offset, tolerance_for

__all__ = ["Checker", "ClaimError", "PointMetrics", "batched_checker", "explain_point", "output_names"]


class ClaimError(ValueError):
    """A closed form or reference that cannot be compared (shape, dtype, structure)."""


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


def _flat(tree) -> jax.Array:
    leaves = jax.tree_util.tree_leaves(tree)
    return jnp.concatenate([jnp.ravel(leaf) for leaf in leaves]) if leaves else jnp.zeros(0)


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


def validate_outputs(claim_id: str, closed_form, reference, args, dtype: str) -> None:
    """Raise :class:`ClaimError` unless both sides return matching pytrees of ``dtype``."""
    try:
        cf_shape = jax.eval_shape(closed_form, *args)
    except Exception as exc:  # a closed form that cannot even be traced
        raise ClaimError(f"{claim_id}: the closed form raised {type(exc).__name__}: {exc}") from exc
    wide = [jax.ShapeDtypeStruct(a.shape, jnp.float64) for a in args]
    try:
        ref_shape = jax.eval_shape(reference, *wide)
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
    """XLA options for the checkers: on the CPU, the lowest optimization level.

    A 128-point batch runs in milliseconds while compiling its checker takes seconds, so on
    the CPU compile time is the cost that counts: these options halve it (7.6 s to 3.4 s for
    the largest claim) and slow the run by a few ms. Other backends keep their defaults,
    which have not been measured here.
    """
    if platform != "cpu":
        return None
    return {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}


def _batched(fn: Callable[..., Any], platform: str) -> Callable[..., Any]:
    return jax.jit(jax.vmap(fn), compiler_options=_compiler_options(platform))


# The checker runs in three compiled stages, each cached on its own, so that a claim whose
# closed form changes (a user's replacement, a planted fault) recompiles only its closed
# form, and claims that share a reference share its compilation. Intermediate results stay
# on the device; only the per-point metrics are transferred.


@functools.lru_cache(maxsize=512)
def _closed_form_stage(closed_form: Callable[..., Any], platform: str):
    """Batch of inputs in the checked dtype -> closed form and its error bound (flat, f64)."""

    def side(*args):
        cf, bound = evaluate_with_bound(closed_form, *args)
        return _flat(cf).astype(jnp.float64), _flat(bound)

    return _batched(side, platform)


@functools.lru_cache(maxsize=512)
def _reference_stage(reference, reference_right, kinks, dtype: str, platform: str):
    """Batch of inputs -> the float64 reference interval, its bound, and autodiff in ``dtype``.

    The reference is evaluated just below every kink argument (left-sided) and just above
    (right-sided, with ``reference_right`` where given).
    """

    def side(*args):
        wide = [a.astype(jnp.float64) for a in args]
        below, above = _one_sided_inputs(wide, kinks)
        ref_lo, bound_lo = evaluate_with_bound(reference, *below)
        if any(kinks) or reference_right is not None:
            ref_hi, bound_hi = evaluate_with_bound(reference_right or reference, *above)
        else:
            ref_hi, bound_hi = ref_lo, bound_lo
        lo, hi = _flat(ref_lo), _flat(ref_hi)
        lower, upper = jnp.minimum(lo, hi), jnp.maximum(lo, hi)
        # How far autodiff itself lands in the checked dtype: a diagnostic, not a tolerance.
        in_dtype = _flat(reference(*args)).astype(jnp.float64) if dtype != "float64" else 0.5 * (lower + upper)
        return lower, upper, jnp.maximum(_flat(bound_lo), _flat(bound_hi)), in_dtype

    return _batched(side, platform)


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
        gap = jnp.where(compared & jnp.isfinite(in_dtype), jnp.abs(in_dtype - 0.5 * (lower + upper)), 0.0)
        zero = jnp.zeros((), jnp.float64)
        return {
            "failed": jnp.any(bad),
            "undecided": jnp.any(~decided) & ~jnp.any(bad),
            "cf_nonfinite": jnp.any(~cf_finite),
            "ref_nonfinite": jnp.any(~ref_finite),
            "abs_error": jnp.max(jnp.where(compared, distance, 0.0), initial=zero),
            "rel_error": jnp.max(jnp.where(compared & (magnitude > 0), relative, 0.0), initial=zero),
            "ratio": jnp.max(jnp.where(compared, distance / tol, 0.0), initial=zero),
            "autodiff_error": jnp.max(gap, initial=zero),
        }

    return _batched(metrics, platform)


@functools.lru_cache(maxsize=16)
def _elements_stage(dtype: str, platform: str):
    return _batched(functools.partial(_distance_and_tolerance, dtype=dtype), platform)


@dataclasses.dataclass(frozen=True)
class Checker:
    """The staged checker of one claim in one dtype on one platform."""

    closed_form: Callable[..., Any]
    reference: Callable[..., Any]
    reference_right: Callable[..., Any] | None
    kinks: tuple[tuple[float, ...], ...]
    dtype: str
    platform: str

    def sides(self, *arrays):
        cf = _closed_form_stage(self.closed_form, self.platform)(*arrays)
        ref = _reference_stage(self.reference, self.reference_right, self.kinks, self.dtype, self.platform)(*arrays)
        return cf, ref

    def __call__(self, *arrays) -> dict[str, jax.Array]:
        (cf, cf_bound), (lower, upper, ref_bound, in_dtype) = self.sides(*arrays)
        return _metrics_stage(self.dtype, self.platform)(cf, cf_bound, lower, upper, ref_bound, in_dtype)

    def elements(self, *arrays):
        """Per-element closed form, reference interval, distance and tolerance (float64)."""
        (cf, cf_bound), (lower, upper, ref_bound, _) = self.sides(*arrays)
        distance, tol = _elements_stage(self.dtype, self.platform)(cf, cf_bound, lower, upper, ref_bound)
        return cf, lower, upper, distance, tol


def batched_checker(closed_form, reference, reference_right, kinks, dtype: str, platform: str = "cpu") -> Checker:
    """The checker from a batch of inputs (leading axis) to per-point metrics."""
    return Checker(closed_form, reference, reference_right, kinks, dtype, platform)


def run_batch(checker, arrays, device) -> PointMetrics:
    """Run one batch on ``device``: one transfer in, one transfer back."""
    on_device = jax.device_put(arrays, device)
    out = jax.device_get(checker(*on_device))
    return PointMetrics(**{k: np.asarray(v) for k, v in out.items()})


def explain_point(checker: Checker, point, batch: int, device, out_shape) -> dict[str, Any]:
    """Where one point fails worst: which output, which element, the values and tolerance.

    The point is tiled to the bulk batch size, so the compiled stages are reused as they are.
    """
    arrays = jax.device_put(tuple(np.broadcast_to(a, (batch, *np.shape(a))).copy() for a in point), device)
    cf, lower, upper, distance, tol = (np.asarray(v)[0] for v in checker.elements(*arrays))
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
