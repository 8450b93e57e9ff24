"""NumPy code traced into JAX, so that its rounding can be bounded like JAX code's.

A host (NumPy) closed form is run, for its *bound* only, on :class:`Traced` stand-ins for its
arguments. They implement NumPy's dispatch protocols (``__array_ufunc__`` for ufuncs,
``__array_function__`` for the rest of the NumPy API, NEP 13 and NEP 18) and Python's
operators by calling the same-named ``jax.numpy`` function, so the function's own
arithmetic becomes a jaxpr that :mod:`derivcheck._bounds` interprets: a NumPy formula is
then charged for exactly the roundings it performs, as the same formula in JAX would be.
Its *values* still come from NumPy itself.

Anything the stand-ins cannot follow (``np.asarray`` of an argument, a Python branch on a
value, an in-place write into a plain NumPy array, a NumPy function JAX lacks) raises
:class:`Untraceable`, and the function's rounding is measured instead
(:meth:`derivcheck._host.HostClosedForm.rounding_spread`).
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["Traced", "Untraceable", "traced"]


class Untraceable(TypeError):
    """The NumPy function did something its traced stand-ins cannot follow."""


def _unwrap(x: Any) -> Any:
    if isinstance(x, Traced):
        return x.value
    if (isinstance(x, np.ndarray) and x.dtype != object) or isinstance(x, np.floating):
        return jnp.asarray(x)  # a NumPy constant keeps its dtype, as in NumPy (NEP 50)
    if isinstance(x, tuple | list):
        return type(x)(_unwrap(v) for v in x)
    if isinstance(x, dict):
        return {k: _unwrap(v) for k, v in x.items()}
    return x


def _wrap(x: Any) -> Any:
    if isinstance(x, jax.Array) or isinstance(x, jax.core.Tracer):
        return Traced(x)
    if isinstance(x, tuple | list):
        return type(x)(_wrap(v) for v in x)
    if hasattr(x, "_fields") and isinstance(x, tuple):
        return type(x)(*(_wrap(v) for v in x))
    return x


def _call(fn: Callable[..., Any] | None, name: str, args, kwargs) -> Any:
    if fn is None:
        raise Untraceable(f"numpy.{name} has no jax.numpy counterpart")
    try:
        return _wrap(fn(*_unwrap(args), **_unwrap(kwargs)))
    except (jax.errors.ConcretizationTypeError, jax.errors.TracerArrayConversionError,
            jax.errors.TracerBoolConversionError, jax.errors.TracerIntegerConversionError,
            NotImplementedError, TypeError, ValueError) as exc:
        raise Untraceable(f"numpy.{name}: {type(exc).__name__}") from None


_REDUCE = {"add": jnp.sum, "multiply": jnp.prod, "maximum": jnp.max, "minimum": jnp.min,
           "logical_or": jnp.any, "logical_and": jnp.all}
_ACCUMULATE = {"add": jnp.cumsum, "multiply": jnp.cumprod}


def _binary(op: Callable[[Any, Any], Any], reflected: bool = False):
    def method(self, other):
        if isinstance(other, np.ndarray) and other.dtype == object:
            return NotImplemented
        a, b = (other, self) if reflected else (self, other)
        return _call(op, op.__name__, (a, b), {})

    return method


def _inplace(op: Callable[[Any, Any], Any]):
    def method(self, other):
        self.value = _unwrap(_call(op, op.__name__, (self, other), {}))
        return self

    return method


def _refuse(what: str):
    def method(self, *args, **kwargs):
        raise Untraceable(f"{what} of a traced value")

    return method


class Traced:
    """A JAX value standing in for a NumPy array inside a user's NumPy function."""

    __array_priority__ = 1000

    def __init__(self, value: Any):
        self.value = value

    # NumPy's dispatch protocols.
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        if kwargs.get("out") is not None or kwargs.get("where", True) is not True:
            raise Untraceable(f"numpy.{ufunc.__name__} with out= or where=")
        kwargs.pop("out", None)
        if method == "__call__":
            return _call(getattr(jnp, ufunc.__name__, None), ufunc.__name__, inputs, kwargs)
        table = {"reduce": _REDUCE, "accumulate": _ACCUMULATE}.get(method, {})
        return _call(table.get(ufunc.__name__), f"{ufunc.__name__}.{method}", inputs, kwargs)

    def __array_function__(self, func, types, args, kwargs):
        namespace = jnp
        for part in func.__module__.split(".")[1:]:
            namespace = getattr(namespace, part, None)
            if namespace is None:
                break
        return _call(getattr(namespace, func.__name__, None), func.__name__, args, kwargs)

    __array__ = _refuse("numpy.asarray")
    __bool__ = _refuse("a truth value")
    __float__ = _refuse("float()")
    __int__ = _refuse("int()")
    __index__ = _refuse("an index")
    item = _refuse("item()")
    tolist = _refuse("tolist()")

    # Attributes and methods of ndarray.
    shape = property(lambda self: jnp.shape(self.value))
    ndim = property(lambda self: jnp.ndim(self.value))
    size = property(lambda self: jnp.size(self.value))
    dtype = property(lambda self: np.dtype(jnp.result_type(self.value)))
    T = property(lambda self: Traced(jnp.transpose(self.value)))

    def __len__(self):
        return self.shape[0]

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def __getitem__(self, index):
        return _call(lambda v, i: v[i], "indexing", (self, index), {})

    def __setitem__(self, index, value):
        self.value = _unwrap(_call(lambda v, i, u: v.at[i].set(u), "item assignment", (self, index, value), {}))

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        method = getattr(jnp.ndarray, name, None) if hasattr(jnp.ndarray, name) else None
        if method is None and not hasattr(jnp, name):
            raise Untraceable(f"ndarray.{name}")

        def call(*args, **kwargs):
            fn = getattr(self.value, name, None) or getattr(jnp, name)
            if name == "copy":
                return Traced(self.value)
            return _call(fn, f"ndarray.{name}", args, kwargs)

        return call

    __neg__ = lambda self: Traced(-self.value)  # noqa: E731
    __pos__ = lambda self: self  # noqa: E731
    __abs__ = lambda self: Traced(jnp.abs(self.value))  # noqa: E731
    __invert__ = lambda self: Traced(~self.value)  # noqa: E731


_OPERATORS = {
    "add": operator.add, "sub": operator.sub, "mul": operator.mul, "truediv": operator.truediv,
    "floordiv": operator.floordiv, "mod": operator.mod, "pow": operator.pow, "matmul": operator.matmul,
    "and": operator.and_, "or": operator.or_, "xor": operator.xor,
}
for _name, _op in _OPERATORS.items():
    setattr(Traced, f"__{_name}__", _binary(_op))
    setattr(Traced, f"__r{_name}__", _binary(_op, reflected=True))
    setattr(Traced, f"__i{_name}__", _inplace(_op))
for _name in ("lt", "le", "gt", "ge", "eq", "ne"):
    setattr(Traced, f"__{_name}__", _binary(getattr(operator, _name)))
Traced.__hash__ = None  # type: ignore[assignment]


def traced(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` (NumPy code) as a JAX-traceable function; raises :class:`Untraceable` when run
    on something it cannot follow."""

    def through_jax(*args):
        # NumPy broadcasts ranks freely: so does its tracing, whatever the caller's JAX config.
        with np.errstate(all="ignore"), jax.numpy_rank_promotion("allow"):
            out = fn(*(Traced(a) for a in args))
        leaves, tree = jax.tree_util.tree_flatten(out, is_leaf=lambda x: isinstance(x, Traced))
        values = []
        for leaf in leaves:
            if isinstance(leaf, Traced):
                values.append(leaf.value)
            elif isinstance(leaf, np.ndarray | np.generic | float | int):
                values.append(jnp.asarray(leaf))
            else:
                raise Untraceable(f"returned {type(leaf).__name__}")
        return jax.tree_util.tree_unflatten(tree, values)

    through_jax.__name__ = getattr(fn, "__name__", "numpy_function")
    return through_jax
