"""Closed forms JAX cannot trace (plain NumPy code), evaluated on the host.

Such a function gets a whole batch at once where that gives the same values as calling it
point by point, and is called point by point otherwise. Whether it does is tried, not
assumed: the batch's output must have the batch axis in front of the per-point shape, and
three of its rows (first, middle, last) must equal, bit for bit, the function called on
those points alone. A function that reduces over its whole input (``x - x.mean()``) or
returns one value for the batch fails that test and is called point by point.

Its rounding is bounded from its own arithmetic. First choice: the function is traced
through NumPy's dispatch protocols into a jaxpr (:mod:`derivcheck._numpy_shim`) and that
jaxpr is interpreted by the same bound interpreter as JAX code, so a NumPy formula and the
same formula in JAX get the same tolerance. The traced version is trusted only where its
values agree with NumPy's own within both bounds (:attr:`HostClosedForm.traced_faithful`).
Otherwise (code the tracing cannot follow) the rounding is *measured*
(:meth:`HostClosedForm.rounding_spread`): the function run in float32 and in float64 on the
same inputs, at the point and at points a few float32 ulps away, the largest difference
rescaled to the checked dtype. That is an estimate, not a bound: a rounding that the
nearby points do not vary (``1 + exp(-x)`` for large x) is missed. A result says so
(``estimated_operations``: ``host closed form (rounding measured)``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from derivcheck._numpy_shim import traced
from derivcheck.errors import ClaimError
from derivcheck.tolerance import tolerance_for

__all__ = ["HOST_PATHS", "SPREAD_SAMPLES", "SPREAD_ULPS", "TRACER_ERRORS", "HostClosedForm", "on_host_if_untraceable",
           "usable_closed_form"]

#: Points at which a host closed form's float32 rounding is measured: the point itself and
#: points whose inputs are moved by up to :data:`SPREAD_ULPS` float32 ulps (relative, so
#: zeros, signs and exact one-hot targets stay as they are).
SPREAD_SAMPLES = 8
SPREAD_ULPS = 4

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
    #: Whether the NumPy-to-JAX tracing of ``fn`` gives its values (None: not yet known).
    traced_faithful: bool | None = None

    def __post_init__(self) -> None:
        self.through_jax = traced(self.fn)
        self._traceable: dict[tuple, bool] = {}

    def traceable(self, avals) -> bool:
        """Whether ``fn`` traces into JAX for these argument shapes, with NumPy's outputs."""
        key = tuple(avals)
        if key not in self._traceable:
            try:
                shim = jax.eval_shape(self.through_jax, *avals)
                real = self.output_shape(avals)
                same = jax.tree_util.tree_structure(shim) == jax.tree_util.tree_structure(real) and all(
                    a.shape == b.shape and a.dtype == b.dtype
                    for a, b in zip(jax.tree_util.tree_leaves(shim), jax.tree_util.tree_leaves(real)))
            except Exception:  # Untraceable, or JAX refusing what NumPy allows
                same = False
            self._traceable[key] = same and self.traced_faithful is not False
        return self._traceable[key] and self.traced_faithful is not False

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

    def rounding_spread(self, arrays: tuple[np.ndarray, ...], dtype: str) -> Any:
        """Per element, the closed form's own rounding error in ``dtype`` (module docstring).

        Non-finite samples (a float32 overflow of a float64 point) count as no information:
        such an element keeps the floor the checker adds (:func:`derivcheck._checker.host_bound`).
        """
        eps32 = float(np.finfo(np.float32).eps)
        scale = tolerance_for(dtype).eps / eps32
        rng = np.random.default_rng(0)
        with np.errstate(all="ignore"):
            narrow = tuple(np.asarray(a, np.float64).astype(np.float32) for a in arrays)
        worst = None
        for k in range(SPREAD_SAMPLES):
            if k:
                with np.errstate(all="ignore"):
                    points = tuple((a * (1 + rng.integers(-SPREAD_ULPS, SPREAD_ULPS + 1, a.shape) * eps32))
                                   .astype(np.float32) for a in narrow)
            else:
                points = narrow
            low = self.batch(points)
            high = self.batch(tuple(p.astype(np.float64) for p in points))
            with np.errstate(all="ignore"):
                gap = jax.tree_util.tree_map(
                    lambda lo, hi: np.nan_to_num(np.abs(lo.astype(np.float64) - hi.astype(np.float64)),
                                                 nan=0.0, posinf=0.0), low, high)
            worst = gap if worst is None else jax.tree_util.tree_map(np.maximum, worst, gap)
        return jax.tree_util.tree_map(lambda g: g * scale, worst)


def on_host_if_untraceable(closed_form: Callable[..., Any], avals) -> Callable[..., Any]:
    """``closed_form`` as it is if JAX traces it on ``avals``, else run on the host
    (:class:`HostClosedForm`: NumPy code). Any other error it raises while traced propagates."""
    if isinstance(closed_form, HostClosedForm):
        return closed_form
    try:
        # Through a lambda: NumPy ufuncs cannot be weakly referenced, as eval_shape would.
        jax.eval_shape(lambda *args: closed_form(*args), *avals)
    except TRACER_ERRORS:
        return HostClosedForm(closed_form)
    return closed_form


def usable_closed_form(closed_form: Callable[..., Any], avals, name: str) -> Callable[..., Any]:
    """The closed form as the checker runs it (:func:`on_host_if_untraceable`), and whatever
    else it raises on its first inputs as one :class:`ClaimError` naming ``name``."""
    try:
        host = on_host_if_untraceable(closed_form, avals)
    except Exception as exc:
        raise ClaimError(f"{name}: the closed form raised {type(exc).__name__}: {exc}") from exc
    if not isinstance(host, HostClosedForm):
        return host
    try:
        host.output_shape(avals)
    except Exception as exc:
        raise ClaimError(f"{name}: the closed form raised {type(exc).__name__} on NumPy inputs: {exc}") from exc
    return host
