"""Input declarations for :func:`derivcheck.check`: what values each argument takes.

Each factory is keyword-only and returns an :class:`Input`; ``check`` draws batches of
such inputs with NumPy on the host (several magnitude regimes, special values, kinks) and
lets Hypothesis shrink a failure to a minimal counterexample. A plain shape tuple stands
for ``real(shape=...)``; a Hypothesis strategy may replace the declarations altogether.

Example::

    inputs = {"logits": derivcheck.real(shape=(5,), bound=30.0), "y": derivcheck.one_hot(shape=(5,))}
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

from derivcheck.errors import InvalidArgument

__all__ = ["Input", "logits", "negative", "nonnegative", "one_hot", "positive", "probability", "real", "simplex"]


@dataclasses.dataclass(frozen=True)
class Input:
    """One declared argument: its kind of values, its shape, and the largest magnitude.

    ``kind`` is one of :data:`derivcheck.inputs.KINDS`; use the factories below.
    """

    kind: str
    shape: tuple[int, ...] = ()
    bound: float = 100.0

    def __post_init__(self) -> None:
        if not all(isinstance(d, int) and not isinstance(d, bool) and d >= 1 for d in self.shape):
            raise InvalidArgument(f"{self.kind} input: shape must be a tuple of positive ints, got {self.shape!r}")
        if not (isinstance(self.bound, (int, float)) and math.isfinite(self.bound) and self.bound > 0):
            raise InvalidArgument(f"{self.kind} input: bound must be a positive finite number, got {self.bound!r}")
        if self.kind in ("simplex", "one_hot") and not self.shape:
            raise InvalidArgument(f"{self.kind} input: needs a shape with at least one dimension (the classes)")


def _shape(shape: Sequence[int]) -> tuple[int, ...]:
    if isinstance(shape, int):
        return (shape,)
    return tuple(shape)


def real(*, shape: Sequence[int] = (), bound: float = 100.0) -> Input:
    """Real values in ``[-bound, bound]``: normal, tiny, near the bound, mixed, and exact
    specials (0, ±1/2, ±1, ±2, ±bound)."""
    return Input("real", _shape(shape), bound)


def positive(*, shape: Sequence[int] = (), bound: float = 100.0) -> Input:
    """Values in ``(0, bound]`` (for ``log``, ``sqrt``, divisions)."""
    return Input("positive", _shape(shape), bound)


def nonnegative(*, shape: Sequence[int] = (), bound: float = 100.0) -> Input:
    """Values in ``[0, bound]``, zero included."""
    return Input("nonnegative", _shape(shape), bound)


def negative(*, shape: Sequence[int] = (), bound: float = 100.0) -> Input:
    """Values in ``[-bound, 0)``."""
    return Input("negative", _shape(shape), bound)


def probability(*, shape: Sequence[int] = ()) -> Input:
    """Probabilities in ``[2^-20, 1]``, elementwise (not normalised)."""
    return Input("probability", _shape(shape), 1.0)


def logits(*, shape: Sequence[int], bound: float = 100.0) -> Input:
    """Real scores for a softmax over the last axis, with saturated rows (one class far
    above the rest) among them."""
    return Input("logits", _shape(shape), bound)


def simplex(*, shape: Sequence[int]) -> Input:
    """Rows (last axis) of non-negative values that sum to exactly 1: target distributions."""
    return Input("simplex", _shape(shape), 1.0)


def one_hot(*, shape: Sequence[int]) -> Input:
    """One-hot rows along the last axis: class labels."""
    return Input("one_hot", _shape(shape), 1.0)
