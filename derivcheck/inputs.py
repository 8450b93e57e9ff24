"""Input kinds: what values a claim's arguments take, in bulk and one point at a time.

Two paths draw inputs (DESIGN.md principle 6):

* **Bulk.** Hypothesis chooses a :class:`BatchPlan` (shape bucket, scale regime, seed) and
  NumPy draws a whole batch of points for it on the host, transferred once.
* **Shrinking.** Once a failure is found, Hypothesis draws single points element by
  element (:func:`point_strategy`), so it can shrink them to a minimal counterexample.

Every float32 input is free of subnormals (accelerators may flush them to zero), and
kink values are injected into every batch, so they are always among the inputs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax.numpy as jnp
import numpy as np
from hypothesis import strategies as st

from derivcheck.claims import Arg, Domain

__all__ = [
    "KINDS", "REGIMES", "BatchPlan", "batch_plans", "buckets_by_size", "draw_batch", "in_dtype", "no_subnormals",
    "point_strategy", "point_width",
]

#: How magnitudes are spread. ``unit``: standard normal; ``small``: log-uniform 1e-8 .. 1e-2;
#: ``large``: near the argument's bound (saturation); ``mixed``: log-uniform over
#: 1e-4 .. bound, per element; ``special``: exact values (0, ±1, ±1/2, ±2, ±bound, kinks).
REGIMES = ("unit", "small", "large", "mixed", "special")

KINK_FRACTION = 0.125
SIMPLEX_GRAIN = 2**20  # simplex targets are multiples of 2**-20: they sum to 1 exactly.


@dataclasses.dataclass(frozen=True)
class BatchPlan:
    """What one Hypothesis example asks for: a batch in one shape bucket."""

    bucket: int
    regime: str
    seed: int


def batch_plans(domain: Domain) -> st.SearchStrategy[BatchPlan]:
    """Hypothesis strategy over batch plans for ``domain``."""
    return st.builds(
        BatchPlan,
        bucket=st.integers(0, len(domain.buckets) - 1),
        regime=st.sampled_from(REGIMES),
        seed=st.integers(0, 2**32 - 1),
    )


def _reals(rng: np.random.Generator, shape, regime: str, bound: float) -> np.ndarray:
    if regime == "unit":
        x = rng.standard_normal(shape)
    elif regime == "small":
        x = rng.choice([-1.0, 1.0], shape) * 10.0 ** rng.uniform(-8, -2, shape)
    elif regime == "large":
        x = rng.choice([-1.0, 1.0], shape) * bound * rng.uniform(0.25, 1.0, shape)
    elif regime == "mixed":
        x = rng.choice([-1.0, 1.0], shape) * 10.0 ** rng.uniform(-4, np.log10(bound), shape)
    else:
        specials = np.array([0.0, 1.0, -1.0, 0.5, -0.5, 2.0, -2.0, bound, -bound])
        x = rng.choice(specials, shape)
    return np.clip(x, -bound, bound)


def _logits(rng, shape, regime, bound):
    x = _reals(rng, shape, regime, bound)
    if regime in ("large", "mixed") and shape and shape[-1] > 1:
        # Saturated softmax: one class far above the rest.
        winner = rng.integers(0, shape[-1], shape[:-1])
        boost = np.zeros(shape)
        np.put_along_axis(boost, winner[..., None], bound / 2, axis=-1)
        x = np.clip(x / 2 + boost, -bound, bound)
    return x


def _negative(rng, shape, regime, bound):
    # Strictly negative: exact zeros from the `special` regime become -1.
    x = -np.abs(_reals(rng, shape, regime, bound))
    return np.where(x == 0, -1.0, x)


def _positive(rng, shape, regime, bound):
    # Strictly positive: exact zeros from the `special` regime become 1.
    x = np.abs(_reals(rng, shape, regime, bound))
    return np.where(x == 0, 1.0, x)


def _direction(rng, shape, regime, bound):
    # Tangents and cotangents: never zero, so that no element of a derivative is hidden.
    x = _reals(rng, shape, regime, bound)
    return np.where(x == 0, 1.0, x)


def _nonnegative(rng, shape, regime, bound):
    return np.abs(_reals(rng, shape, regime, bound))


def _probabilities(rng, shape, regime, bound):
    if regime == "small":
        return 10.0 ** rng.uniform(-6, -2, shape)
    if regime == "large":
        return 1.0 - 10.0 ** rng.uniform(-6, -1, shape)
    if regime == "special":
        return rng.choice([1.0, 0.5, 0.25, 2.0**-10], shape)
    return rng.uniform(2.0**-20, 1.0, shape)


def _one_hot(rng, shape, regime, bound):
    classes = rng.integers(0, shape[-1], shape[:-1])
    return np.eye(shape[-1])[classes]


def _simplex(rng, shape, regime, bound):
    alpha = {"small": 0.1, "large": 10.0}.get(regime, 1.0)
    p = rng.dirichlet(np.full(shape[-1], alpha), shape[:-1])
    return rng.multinomial(SIMPLEX_GRAIN, p).astype(np.float64) / SIMPLEX_GRAIN


def _smoothed(rng, shape, regime, bound):
    # Label smoothing: sums to 1 but is not one-hot.
    n = shape[-1]
    eps = rng.choice([2.0**-4, 2.0**-3, 2.0**-2, 2.0**-1], shape[:-1])[..., None]
    return _one_hot(rng, shape, regime, bound) * (1 - eps) + eps / n


def _unnormalized(rng, shape, regime, bound):
    # Positive targets whose sum is not 1.
    return rng.uniform(0.1, 2.0, shape) * rng.choice([0.5, 2.0, 3.0], shape[:-1])[..., None]


@dataclasses.dataclass(frozen=True)
class Kind:
    """How one kind of argument is drawn: a batch generator and a point strategy.

    ``nonzero``: never zero (strictly signed values, directions, probabilities), also once
    rounded to a narrow dtype: a value too small for it keeps its sign as the dtype's
    smallest normal (:func:`in_dtype`), since a 1e-8 drawn as negative is not 0.
    """

    batch: Callable[[np.random.Generator, tuple[int, ...], str, float], np.ndarray]
    point: Callable[[tuple[int, ...], float, int, tuple[float, ...]], st.SearchStrategy[np.ndarray]]
    nonzero: bool = False
    #: Rows sum to 1 (targets): in a dtype too narrow for multiples of 2**-20, they are
    #: drawn again on its own grain (:func:`_on_grain`), so that they still sum to 1 there.
    sums_to_one: bool = False


def _float_elements(bound: float, width: int, kinks: tuple[float, ...] = ()):
    floats = st.floats(-bound, bound, allow_nan=False, allow_subnormal=False, width=width)
    return st.one_of(st.sampled_from(kinks), floats) if kinks else floats


def _array_of(shape, elements) -> st.SearchStrategy[np.ndarray]:
    size = int(np.prod(shape, dtype=int))
    return st.lists(elements, min_size=size, max_size=size).map(
        lambda xs: np.asarray(xs, np.float64).reshape(shape)
    )


def _point_reals(shape, bound, width, kinks=()):
    return _array_of(shape, _float_elements(bound, width, kinks))


def _point_negative(shape, bound, width, kinks=()):
    return _array_of(shape, st.floats(-bound, -(2.0**-100), width=width, allow_subnormal=False))


def _point_positive(shape, bound, width, kinks=()):
    return _array_of(shape, st.floats(2.0**-100, bound, width=width, allow_subnormal=False))


def _point_direction(shape, bound, width, kinks=()):
    # Shrinks towards +-1/2 .. 1, never to 0: a zero cotangent would hide the failure.
    half = st.floats(bound / 2, bound, width=width)
    return _array_of(shape, st.one_of(half, half.map(lambda v: -v)))


def _point_nonnegative(shape, bound, width, kinks=()):
    floats = st.floats(0.0, bound, width=width, allow_subnormal=False)
    return _array_of(shape, st.one_of(st.sampled_from(kinks), floats) if kinks else floats)


def _point_probabilities(shape, bound, width, kinks=()):
    return _array_of(shape, st.floats(2.0**-20, 1.0, width=width, allow_subnormal=False))


def _point_one_hot(shape, bound, width, kinks=()):
    rows = int(np.prod(shape[:-1], dtype=int))
    return st.lists(st.integers(0, shape[-1] - 1), min_size=rows, max_size=rows).map(
        lambda cs: np.eye(shape[-1])[np.asarray(cs, int)].reshape(shape)
    )


def _point_simplex(shape, bound, width, kinks=()):
    # Counts out of 16 per row: exact dyadic fractions that sum to 1.
    rows = int(np.prod(shape[:-1], dtype=int))
    n = shape[-1]
    cuts = st.lists(st.integers(0, 16), min_size=n - 1, max_size=n - 1).map(sorted)

    def to_rows(all_cuts):
        out = []
        for c in all_cuts:
            edges = np.array([0, *c, 16], np.float64)
            out.append(np.diff(edges) / 16)
        return np.asarray(out).reshape(shape)

    return st.lists(cuts, min_size=rows, max_size=rows).map(to_rows)


def _point_smoothed(shape, bound, width, kinks=()):
    eps = st.sampled_from([2.0**-1, 2.0**-2, 2.0**-3, 2.0**-4])
    return st.tuples(_point_one_hot(shape, bound, width), eps).map(
        lambda t: t[0] * (1 - t[1]) + t[1] / shape[-1]
    )


def _point_unnormalized(shape, bound, width, kinks=()):
    return _array_of(shape, st.floats(0.125, 2.0, width=width)).filter(
        lambda y: not np.any(np.isclose(y.sum(axis=-1), 1.0))
    )


KINDS: dict[str, Kind] = {
    "real": Kind(_reals, _point_reals),
    "logits": Kind(_logits, _point_reals),
    "negative": Kind(_negative, _point_negative, nonzero=True),
    "positive": Kind(_positive, _point_positive, nonzero=True),
    "nonnegative": Kind(_nonnegative, _point_nonnegative),
    "direction": Kind(_direction, _point_direction, nonzero=True),
    "probability": Kind(_probabilities, _point_probabilities, nonzero=True),
    "one_hot": Kind(_one_hot, _point_one_hot),
    "simplex": Kind(_simplex, _point_simplex, sums_to_one=True),
    "smoothed": Kind(_smoothed, _point_smoothed, sums_to_one=True),
    "unnormalized": Kind(_unnormalized, _point_unnormalized),
}


def no_subnormals(x: np.ndarray, dtype) -> np.ndarray:
    """``x`` in ``dtype`` with subnormals set to 0 (accelerators may flush them), also
    where rounding to ``dtype`` makes one (float16's subnormals lie below 6.1e-5)."""
    tiny = float(jnp.finfo(dtype).tiny)
    rounded = np.asarray(x).astype(dtype)
    return np.where(np.abs(rounded.astype(np.float64)) < tiny, 0.0, rounded).astype(dtype)


def _on_grain(rows: np.ndarray, dtype) -> np.ndarray:
    """Rows that sum to 1, moved onto the grain ``dtype`` represents every multiple of
    below 1 (2**-8 for bfloat16, 2**-11 for float16): each entry but the row's largest
    rounded down to it, the largest the rest. Rounded to bfloat16 as they are, targets in
    multiples of 2**-20 sum to 1 +- 1%, and a claim that holds for targets summing to 1
    would be checked where they do not."""
    grain = 2.0 ** -(jnp.finfo(dtype).nmant + 1)
    if grain <= 1 / SIMPLEX_GRAIN:
        return rows
    down = np.floor(rows / grain) * grain
    largest = np.argmax(rows, axis=-1)[..., None]
    np.put_along_axis(down, largest, 0.0, axis=-1)
    np.put_along_axis(down, largest, 1.0 - down.sum(axis=-1, keepdims=True), axis=-1)
    return down


def in_dtype(arg: Arg, x: np.ndarray, dtype) -> np.ndarray:
    """``x``, drawn for ``arg``, in ``dtype`` (:func:`no_subnormals`), still of its kind: a
    never-zero kind's value that the dtype would flush keeps its sign as the smallest
    normal (float16 rounds a negative 1e-8 to 0, where softsign's x < 0 branch is not),
    and targets that sum to 1 still do (:func:`_on_grain`), drawn in a batch or shrunk."""
    kind = _kind_of(arg)
    if kind.sums_to_one:
        x = _on_grain(x[..., 0], dtype)[..., None] if arg.column else _on_grain(x, dtype)
    rounded = no_subnormals(x, dtype)
    if not kind.nonzero:
        return rounded
    tiny = np.asarray(jnp.finfo(dtype).tiny, dtype)
    return np.where((rounded == 0) & (np.asarray(x) != 0), np.sign(x).astype(dtype) * tiny, rounded).astype(dtype)


def point_width(dtype) -> int:
    """Hypothesis's float width for single points of ``dtype``: 64 or 32; bfloat16 and
    float16 points are float32 values rounded to the dtype (:func:`no_subnormals`)."""
    return 64 if jnp.dtype(dtype) == np.float64 else 32


def _inject_kinks(rng, x: np.ndarray, kinks: tuple[float, ...]) -> np.ndarray:
    if not kinks:
        return x
    where = rng.random(x.shape) < KINK_FRACTION
    return np.where(where, rng.choice(np.asarray(kinks, np.float64), x.shape), x)


def draw_batch(
    domain: Domain, plan: BatchPlan, *, points: int, dtype, seed: int = 0
) -> tuple[np.ndarray, ...]:
    """Draw ``points`` inputs for ``plan`` on the host, one array per argument.

    Each array has a leading batch axis. ``seed`` (the user's ``--seed``) and the plan's
    own seed together fix the draw.
    """
    rng = np.random.default_rng([seed, plan.seed])
    dims = domain.buckets[plan.bucket]
    arrays = []
    for arg in domain.args:
        kind = _kind_of(arg)
        shape = (points, *domain.drawn_shape_of(arg, dims))
        x = kind.batch(rng, shape, plan.regime, arg.bound_in(dtype))
        x = _inject_kinks(rng, x, arg.kinks)
        x = x[..., None] if arg.column else x
        arrays.append(in_dtype(arg, x, dtype))
    return tuple(arrays)


def point_strategy(domain: Domain, *, dtype, bucket: int) -> st.SearchStrategy[tuple[np.ndarray, ...]]:
    """Single points of one shape bucket, element by element, for Hypothesis to shrink."""
    width = point_width(dtype)
    dims = domain.buckets[bucket]
    def one(arg: Arg):
        bound = _at_most(arg.bound_in(dtype), width)
        drawn = _kind_of(arg).point(domain.drawn_shape_of(arg, dims), bound, width, arg.kinks)
        return drawn.map(lambda x: x[..., None]) if arg.column else drawn

    return st.tuples(*(one(arg) for arg in domain.args))


def _at_most(bound: float, width: int) -> float:
    """The largest float of ``width`` bits not above ``bound``: Hypothesis draws floats of a
    width between limits of that width only (0.4 is not a float32)."""
    if width == 64:
        return bound
    narrow = np.float32(bound)
    # Compared as Python floats: NumPy 2 would compare in float32, where 0.4 rounds to
    # the float32 just above it and the test passes.
    return float(narrow) if float(narrow) <= bound else float(np.nextafter(narrow, np.float32(0)))


def buckets_by_size(domain: Domain) -> list[int]:
    """Shape buckets, smallest total input size first: the order to look for small failures."""
    def size(bucket: int) -> int:
        dims = domain.buckets[bucket]
        return sum(int(np.prod(domain.shape_of(a, dims), dtype=int)) for a in domain.args)

    return sorted(range(len(domain.buckets)), key=size)


def _kind_of(arg: Arg) -> Kind:
    try:
        return KINDS[arg.kind]
    except KeyError:
        raise ValueError(f"unknown input kind {arg.kind!r}; known: {', '.join(KINDS)}") from None
