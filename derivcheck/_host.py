"""Closed forms JAX cannot trace (plain NumPy code), evaluated on the host.

Such a function gets a whole batch at once where that gives the same values as calling it
point by point, and is called point by point otherwise. Whether it does is tried, not
assumed: the batch's output must have the batch axis in front of the per-point shape, and
three of its rows (first, middle, last) must equal, bit for bit, the function called on
those points alone. A function that reduces over its whole input (``x - x.mean()``) or
returns one value for the batch fails that test and is called point by point.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from derivcheck.errors import ClaimError

__all__ = ["HOST_PATHS", "TRACER_ERRORS", "HostClosedForm"]

#: How a closed form was evaluated, as recorded in a result.
HOST_PATHS = ("host, vectorised", "host, point by point")

#: What JAX raises when a function needs concrete values (NumPy calls, Python branches).
TRACER_ERRORS = (jax.errors.JAXTypeError, jax.errors.JAXIndexError)


@dataclasses.dataclass(eq=False)  # hashed by identity, like the functions it wraps
class HostClosedForm:
    """A closed form run on the host with NumPy arrays of the checked dtype.

    Attributes:
      fn: the user's function; takes and returns NumPy arrays (or a pytree of them).
      vectorized: ``True`` to always pass the whole batch, ``False`` to always go point by
        point, ``None`` to decide by trying (see the module docstring).
      path: how the last batch was evaluated, one of :data:`HOST_PATHS` ("" before).
    """

    fn: Callable[..., Any]
    vectorized: bool | None = None
    path: str = ""

    @property
    def __name__(self) -> str:
        return getattr(self.fn, "__name__", type(self.fn).__name__)

    def __call__(self, *args: np.ndarray) -> Any:
        with np.errstate(all="ignore"):  # overflow etc. show up as non-finite values, compared
            out = self.fn(*args)
        return jax.tree_util.tree_map(np.asarray, out)

    def output_shape(self, avals) -> Any:
        """The output's shapes and dtypes, from a call on ones of the given shapes."""
        out = self(*(np.ones(a.shape, a.dtype) for a in avals))
        return jax.tree_util.tree_map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), out)

    def batch(self, arrays: tuple[np.ndarray, ...]) -> Any:
        """The outputs for a batch (leading axis: points), as a pytree of stacked arrays."""
        n = len(arrays[0])
        if self.vectorized is not False:
            out = self._vectorised(arrays, n)
            if out is not None:
                self.path = HOST_PATHS[0]
                return out
            if self.vectorized:
                raise ClaimError(
                    f"{self.__name__}: vectorized=True, but called on a batch it does not return "
                    "the per-point outputs stacked; pass vectorized=None to fall back to point by point"
                )
            self.vectorized = False  # decided once: a function that mixes points always will
        self.path = HOST_PATHS[1]
        points = [self(*(a[k] for a in arrays)) for k in range(n)]
        return jax.tree_util.tree_map(lambda *xs: np.stack(xs), *points)

    def _vectorised(self, arrays, n: int) -> Any | None:
        try:
            out = self(*arrays)
        except Exception:
            return None
        for k in sorted({0, n // 2, n - 1}):
            alone = self(*(a[k] for a in arrays))
            if jax.tree_util.tree_structure(alone) != jax.tree_util.tree_structure(out):
                return None
            for whole, single in zip(jax.tree_util.tree_leaves(out), jax.tree_util.tree_leaves(alone)):
                if whole.shape != (n, *single.shape) or whole.dtype != single.dtype:
                    return None
                if not np.array_equal(whole[k], single, equal_nan=True):
                    return None
        return out
