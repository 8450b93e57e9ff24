"""Jaxprs as SymPy expressions, element by element, over fixed small shapes.

:func:`evaluate` walks a jaxpr as the bound interpreter (:mod:`derivcheck._bounds`) does,
but carries exact SymPy expressions instead of numbers: an array is a NumPy object array of
expressions, a float constant is the exact binary number it is (``0.1`` is
:math:`3602879701896397 / 2^{55}`), a comparison is decided, never approximated.

A kink is a branch. Where a comparison, ``max``, ``min``, ``abs`` or ``sign`` meets an
expression whose sign the domain's assumptions do not fix (``x > 0`` for a real ``x``), the
walk asks its :class:`Paths` for a decision: the prover (:mod:`derivcheck._prove`) walks the
jaxprs once per combination of signs, so that every value on a path is a plain expression
(no ``Piecewise``) and every branch condition a strict inequality: the ties themselves
(``x = 0`` of ReLU) are the kinks, which the numerical check covers (DESIGN.md principle 5).

Data movement with concrete indices (``gather``, ``scatter-add``, ``dynamic_slice``, ``pad``
and the like) is linear in its float operands: its coefficients are found by running the
primitive on unit arrays. A primitive with no rule here, or a symbolic value where a
concrete one is needed (an index, a float converted to an integer), raises
:class:`Untranslatable`: the claim is then "not attempted", never guessed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import sympy
from jax.extend import core

from derivcheck._bounds import nested_jaxpr

__all__ = ["Decide", "Paths", "Untranslatable", "evaluate", "exact"]


class Untranslatable(Exception):
    """The jaxpr holds something with no exact meaning here (its message says what)."""


class Decide(Exception):
    """The walk needs the sign of ``key`` (an expression the assumptions leave open)."""

    def __init__(self, key: sympy.Expr):
        super().__init__(str(key))
        self.key = key


class Paths:
    """The signs chosen on one path: ``key -> +1 | -1``, each key a canonical expression
    (:func:`canonical`). Asked for an undecided key, raises :class:`Decide`."""

    def __init__(self, signs: dict[sympy.Expr, int] | None = None, check: Callable[[], None] | None = None,
                 bounded: dict[sympy.Symbol, sympy.Expr] | None = None):
        self.signs = dict(signs or {})
        self.check = check or (lambda: None)
        #: symbols with a bound their assumptions cannot say (a probability below 1), each
        #: as an expression of positive symbols that keeps it there, ``p = 1 / (1 + u)``
        self.bounded = bounded or {}

    def sign(self, expr: Any) -> int:
        """The sign of ``expr`` on this path: -1, 0 (exactly zero) or +1."""
        known = _known_sign(expr)
        if known is None:
            # Over one denominator, the signs of numerator and denominator often are known
            # (s^2 - s of a sigmoid s is -e^{-x} / (1 + e^{-x})^2).
            bounded = self.bounded and isinstance(expr, sympy.Basic) and expr.has(*self.bounded)
            known = _sign_of_fraction(expr.xreplace(self.bounded) if bounded else expr)
        if known is not None:
            return known
        key, flip = canonical(expr)
        if key is None:  # the canonical form is a number after all
            return flip
        if key not in self.signs:
            raise Decide(key)
        return self.signs[key] * flip


def _known_sign(expr: Any) -> int | None:
    if isinstance(expr, bool | np.bool_):
        return int(expr)
    e = sympy.sympify(expr)
    if e.is_zero:
        return 0
    if e.is_positive:
        return 1
    if e.is_negative:
        return -1
    if e.is_number:
        if e.equals(0):
            return 0
        value = e.evalf(50)
        if value.is_real and value != 0:
            return 1 if value > 0 else -1
        raise Untranslatable(f"the sign of the number {e} cannot be decided")
    return None


def _sign_of_fraction(expr: sympy.Expr) -> int | None:
    numerator, denominator = sympy.fraction(sympy.together(expr))
    signs = [_known_sign(sympy.expand(numerator)), _known_sign(denominator)]
    return None if None in signs else signs[0] * signs[1]


def canonical(expr: Any) -> tuple[sympy.Expr | None, int]:
    """``expr`` as ``sign * key``: expanded, its positive content and factors known to be
    positive divided out, and of the two signs the one :meth:`could_extract_minus_sign`
    does not pick, so that ``x - y`` and ``2 y - 2 x`` share one key."""
    e = sympy.factor_terms(sympy.expand(expr))
    flip = 1
    if e.is_Mul:
        kept = []
        for factor in e.args:
            if factor.is_positive:
                continue
            if factor.is_negative:
                flip = -flip
                continue
            kept.append(factor)
        e = sympy.Mul(*kept)
    content, e = e.as_content_primitive()
    if content.is_negative:
        flip = -flip
    if e.is_number:
        known = _known_sign(e)
        return None, (known or 0) * flip
    if e.could_extract_minus_sign():
        e, flip = -e, -flip
    return e, flip


def exact(value: Any) -> Any:
    """A concrete number as an exact SymPy number (floats as their binary value); bools
    stay bools."""
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, sympy.Basic):
        return value
    if isinstance(value, int | np.integer):
        return sympy.Integer(int(value))
    v = float(value)
    if not np.isfinite(v):
        raise Untranslatable(f"the constant {v} is not a real number")
    return sympy.Rational(v)


def _array(value: Any) -> np.ndarray:
    """A concrete array (numpy, jax, a literal) as an object array of exact numbers."""
    a = np.asarray(value)
    out = np.empty(a.shape, dtype=object)
    for index in np.ndindex(a.shape):
        out[index] = exact(a[index])
    return out


def _is_concrete(x: np.ndarray) -> bool:
    return all(isinstance(v, bool) or (isinstance(v, sympy.Basic) and v.is_number) for v in x.flat)


def _numeric(x: np.ndarray, dtype) -> np.ndarray:
    """A concrete object array as a NumPy array of ``dtype`` (for running a primitive)."""
    if not _is_concrete(x):
        raise Untranslatable("a symbolic value is used where a concrete one is needed (an index, a shape)")
    kind = np.dtype(dtype).kind
    cast = bool if kind == "b" else (int if kind in "iu" else float)
    return np.array([cast(v) for v in x.flat], dtype=dtype).reshape(x.shape)


def _elementwise(fn: Callable[..., Any], *operands: np.ndarray) -> np.ndarray:
    arrays = np.broadcast_arrays(*operands)
    out = np.empty(arrays[0].shape, dtype=object)
    for index in np.ndindex(out.shape):
        out[index] = fn(*(a[index] for a in arrays))
    return out


def _to_expr(v: Any) -> Any:
    return sympy.Integer(int(v)) if isinstance(v, bool) else v


def _choose(paths: Paths, a: Any, b: Any, want: int) -> Any:
    """``max`` (want=+1) or ``min`` (-1) of two expressions: one of them, on this path."""
    s = paths.sign(_to_expr(a) - _to_expr(b))
    return a if s * want >= 0 else b


def _compare(name: str) -> Callable[[Paths, Any, Any], bool]:
    test = {"eq": lambda s: s == 0, "ne": lambda s: s != 0, "lt": lambda s: s < 0,
            "le": lambda s: s <= 0, "gt": lambda s: s > 0, "ge": lambda s: s >= 0}[name]

    def compare(paths, a, b):
        if isinstance(a, bool) and isinstance(b, bool):
            return test(int(a) - int(b))
        return test(paths.sign(_to_expr(a) - _to_expr(b)))

    return compare


def _sign_of(paths: Paths, x: Any) -> Any:
    return sympy.Integer(paths.sign(x))


def _abs(paths: Paths, x: Any) -> Any:
    return x if paths.sign(x) >= 0 else -x


def _integer_pow(x, *, y):
    return x**y


def _div(a, b):
    if b == 0:
        raise Untranslatable("a division by an exact zero")
    return a / b


#: Elementwise arithmetic: primitive -> f(*elements, **params).
_ARITHMETIC: dict[str, Callable[..., Any]] = {
    "add": lambda a, b: a + b,
    "add_any": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": _div,
    "neg": lambda a: -a,
    "exp": sympy.exp,
    "exp2": lambda a: 2**a,
    "log": sympy.log,
    "log1p": lambda a: sympy.log(1 + a),
    "expm1": lambda a: sympy.exp(a) - 1,
    "tanh": sympy.tanh,
    "logistic": lambda a: 1 / (1 + sympy.exp(-a)),
    "sin": sympy.sin,
    "cos": sympy.cos,
    "tan": sympy.tan,
    "sinh": sympy.sinh,
    "cosh": sympy.cosh,
    "atan": sympy.atan,
    "erf": sympy.erf,
    "sqrt": sympy.sqrt,
    "rsqrt": lambda a: 1 / sympy.sqrt(a),
    "cbrt": sympy.cbrt,
    "square": lambda a: a**2,
    "pow": lambda a, b: a**b,
    "integer_pow": _integer_pow,
    "stop_gradient": lambda a: a,
    "reduce_precision": lambda a, **_: a,
    "copy": lambda a: a,
    "copy_p": lambda a: a,
    "optimization_barrier": lambda a: a,
}

#: Elementwise operations that branch: primitive -> f(paths, *elements).
_BRANCHING: dict[str, Callable[..., Any]] = {
    "max": lambda paths, a, b: _choose(paths, a, b, 1),
    "min": lambda paths, a, b: _choose(paths, a, b, -1),
    "abs": _abs,
    "sign": _sign_of,
    **{name: _compare(name) for name in ("eq", "ne", "lt", "le", "gt", "ge")},
}

_LOGICAL = {
    "and": lambda a, b: a & b if not isinstance(a, bool) else (a and b),
    "or": lambda a, b: a | b if not isinstance(a, bool) else (a or b),
    "not": lambda a: (not a) if isinstance(a, bool) else ~a,
    "xor": lambda a, b: a ^ b,
}

#: Primitives linear in their float operands, given concrete others (indices, sizes).
_LINEAR = frozenset({
    "gather", "scatter-add", "scatter_add", "scatter", "dynamic_slice", "dynamic_update_slice", "pad",
    "select_and_scatter_add", "reduce_window_sum", "cumsum", "rev", "slice", "concatenate", "transpose",
    "broadcast_in_dim", "reshape", "squeeze", "expand_dims", "split", "stack",
})

#: Primitives run as they are where every operand is concrete (integer and boolean work).
_CONCRETE_ONLY = frozenset({
    "iota", "convert_element_type", "argmax", "argmin", "floor", "ceil", "round", "rem", "shift_left",
    "shift_right_logical", "shift_right_arithmetic", "clamp", "is_finite", "population_count", "sort",
})


def _bind(eqn, arrays: Sequence[np.ndarray]) -> list[np.ndarray]:
    outs = eqn.primitive.bind(*arrays, **eqn.params)
    outs = outs if eqn.primitive.multiple_results else [outs]
    return [np.asarray(o) for o in outs]


def _is_float_var(v) -> bool:
    return np.dtype(v.aval.dtype).kind == "f"


def _linear(eqn, invals: list[np.ndarray]) -> list[np.ndarray]:
    """A primitive linear in its float operands, by its coefficients on unit arrays."""
    name = eqn.primitive.name
    if name in ("reshape", "squeeze", "expand_dims"):
        return [np.reshape(invals[0], eqn.outvars[0].aval.shape)]
    if name == "transpose":
        return [np.transpose(invals[0], eqn.params["permutation"])]
    if name == "broadcast_in_dim":
        shape, dims = eqn.params["shape"], eqn.params["broadcast_dimensions"]
        expanded = [1] * len(shape)
        for d, size in zip(dims, invals[0].shape):
            expanded[d] = size
        return [np.broadcast_to(np.reshape(invals[0], expanded), shape).copy()]
    if name == "concatenate":
        return [np.concatenate(invals, axis=eqn.params["dimension"])]
    if name == "stack":
        return [np.stack(invals, axis=eqn.params["axis"])]
    if name == "slice" and eqn.params.get("strides") in (None, (1,) * invals[0].ndim):
        index = tuple(slice(s, e) for s, e in zip(eqn.params["start_indices"], eqn.params["limit_indices"]))
        return [invals[0][index].copy()]
    if name == "rev":
        return [np.flip(invals[0], axis=eqn.params["dimensions"]).copy()]
    floats = [k for k, v in enumerate(eqn.invars) if _is_float_var(v)]
    dtypes = [v.aval.dtype for v in eqn.invars]
    base = [np.zeros(v.aval.shape, v.aval.dtype) if k in floats else _numeric(invals[k], dtypes[k])
            for k, v in enumerate(eqn.invars)]
    outs = [np.full(v.aval.shape, sympy.Integer(0), dtype=object) for v in eqn.outvars]
    if any(np.any(o != 0) for o in _bind(eqn, base)):
        raise Untranslatable(f"{name} is not linear in its float operands here")
    for k in floats:
        for index in np.ndindex(invals[k].shape):
            unit = list(base)
            unit[k] = np.zeros_like(base[k])
            unit[k][index] = 1.0
            for out, coefficients in zip(outs, _bind(eqn, unit)):
                if not np.all(np.isfinite(coefficients)):
                    raise Untranslatable(f"{name} fills with a non-finite value here")
                for at in zip(*np.nonzero(coefficients)):
                    out[at] = out[at] + exact(coefficients[at]) * invals[k][index]
    return outs


def _reduce(eqn, x: np.ndarray, paths: Paths) -> np.ndarray:
    name, axes = eqn.primitive.name, tuple(eqn.params["axes"])
    kept = [d for d in range(x.ndim) if d not in axes]
    moved = np.transpose(x, kept + list(axes)).reshape([x.shape[d] for d in kept] + [-1])
    out = np.empty(moved.shape[:-1], dtype=object)
    for index in np.ndindex(out.shape):
        terms = list(moved[index])
        if name == "reduce_sum":
            out[index] = sympy.Add(*terms)
        elif name == "reduce_prod":
            out[index] = sympy.Mul(*terms)
        elif name in ("reduce_max", "reduce_min"):
            best = terms[0]
            for t in terms[1:]:
                best = _choose(paths, best, t, 1 if name == "reduce_max" else -1)
            out[index] = best
        elif name == "reduce_and":
            out[index] = all(terms)
        elif name == "reduce_or":
            out[index] = any(terms)
        else:
            raise Untranslatable(f"no exact rule for {name}")
    return out


def _argbest(eqn, x: np.ndarray, paths: Paths, want: int) -> np.ndarray:
    """``argmax`` (want=+1) or ``argmin`` along one axis: the first index of the extreme."""
    (axis,) = eqn.params["axes"]
    moved = np.moveaxis(x, axis, -1)
    out = np.empty(moved.shape[:-1], dtype=object)
    for index in np.ndindex(out.shape):
        row = moved[index]
        best = 0
        for k in range(1, len(row)):
            if paths.sign(_to_expr(row[k]) - _to_expr(row[best])) * want > 0:
                best = k
        out[index] = sympy.Integer(best)
    return out


def _dot_general(eqn, lhs: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    (lc, rc), (lb, rb) = eqn.params["dimension_numbers"]
    lf = [d for d in range(lhs.ndim) if d not in lc and d not in lb]
    rf = [d for d in range(rhs.ndim) if d not in rc and d not in rb]
    size = int(np.prod([lhs.shape[d] for d in lc], dtype=int))
    a = np.transpose(lhs, [*lb, *lf, *lc]).reshape([lhs.shape[d] for d in lb] + [lhs.shape[d] for d in lf] + [size])
    b = np.transpose(rhs, [*rb, *rc, *rf]).reshape([rhs.shape[d] for d in rb] + [size] + [rhs.shape[d] for d in rf])
    batch = [lhs.shape[d] for d in lb]
    free_l, free_r = [lhs.shape[d] for d in lf], [rhs.shape[d] for d in rf]
    out = np.empty(batch + free_l + free_r, dtype=object)
    for bi in np.ndindex(*batch):
        for li in np.ndindex(*free_l):
            for ri in np.ndindex(*free_r):
                out[bi + li + ri] = sympy.Add(*(a[(*bi, *li, k)] * b[(*bi, k, *ri)] for k in range(size)))
    return out


def _select_n(paths: Paths, which: np.ndarray, *cases: np.ndarray) -> np.ndarray:
    def pick(w, *c):
        return c[int(w)]

    if not _is_concrete(which):
        raise Untranslatable("select_n with a symbolic selector")
    return _elementwise(pick, which, *cases)


def _convert(eqn, x: np.ndarray) -> np.ndarray:
    kind = np.dtype(eqn.params["new_dtype"]).kind
    if kind == "f":
        return _elementwise(_to_expr, x)
    if not _is_concrete(x) or kind not in "biu":
        raise Untranslatable(f"a symbolic value converted to {eqn.params['new_dtype']}")
    return _elementwise(bool if kind == "b" else lambda v: sympy.Integer(int(v)), x)


def evaluate(jaxpr: core.Jaxpr, consts: Sequence[Any], args: Sequence[np.ndarray], paths: Paths) -> list[np.ndarray]:
    """The outputs of ``jaxpr`` on symbolic ``args`` (object arrays), on the path ``paths``."""
    env: dict[Any, np.ndarray] = {}

    def read(v):
        if isinstance(v, core.Literal):
            return _array(v.val)
        return env[v]

    for var, const in zip(jaxpr.constvars, consts):
        env[var] = const if isinstance(const, np.ndarray) and const.dtype == object else _array(const)
    for var, arg in zip(jaxpr.invars, args):
        env[var] = arg
    for eqn in jaxpr.eqns:
        paths.check()
        invals = [read(v) for v in eqn.invars]
        outs = _equation(eqn, invals, paths)
        for var, out in zip(eqn.outvars, outs):
            if tuple(out.shape) != tuple(var.aval.shape):
                raise Untranslatable(f"{eqn.primitive.name}: shape {out.shape} where {var.aval.shape} was traced")
            env[var] = out
    return [read(v) for v in jaxpr.outvars]


def _equation(eqn, invals: list[np.ndarray], paths: Paths) -> list[np.ndarray]:
    name = eqn.primitive.name
    if name in _ARITHMETIC:
        fn = _ARITHMETIC[name]
        params = {"y": eqn.params["y"]} if name == "integer_pow" else {}
        if any(np.dtype(v.aval.dtype).kind not in "f" for v in eqn.outvars):
            return _concretely(eqn, invals)
        return [_elementwise(lambda *e: fn(*(_to_expr(x) for x in e), **params), *invals)]
    if name in _BRANCHING:
        fn = _BRANCHING[name]
        return [_elementwise(lambda *e: fn(paths, *e), *invals)]
    if name in _LOGICAL:
        if all(_is_concrete(x) for x in invals):
            return [_elementwise(_LOGICAL[name], *invals)]
        raise Untranslatable(f"{name} of symbolic values")
    if name in ("reduce_sum", "reduce_prod", "reduce_max", "reduce_min", "reduce_and", "reduce_or"):
        return [_reduce(eqn, invals[0], paths)]
    if name in ("argmax", "argmin") and not _is_concrete(invals[0]):
        return [_argbest(eqn, invals[0], paths, 1 if name == "argmax" else -1)]
    if name == "dot_general":
        return [_dot_general(eqn, *invals)]
    if name == "select_n":
        return [_select_n(paths, *invals)]
    if name == "convert_element_type":
        return [_convert(eqn, invals[0])]
    if name == "cumsum":
        axis, reverse = eqn.params["axis"], eqn.params["reverse"]
        x = np.flip(invals[0], axis) if reverse else invals[0]
        out = np.cumsum(x, axis=axis)
        return [np.flip(out, axis).copy() if reverse else out]
    if name in _LINEAR and all(_is_float_var(v) for v in eqn.outvars):
        return _linear(eqn, invals)
    inner = nested_jaxpr(eqn)
    if inner is not None and name not in ("while", "scan", "cond"):
        return evaluate(inner[0], inner[1], invals, paths)
    if name == "cond":
        index = invals[0]
        if not _is_concrete(index):
            raise Untranslatable("cond on a symbolic index")
        branch = eqn.params["branches"][int(np.clip(int(index.item()), 0, len(eqn.params["branches"]) - 1))]
        return evaluate(branch.jaxpr, branch.consts, invals[1:], paths)
    if all(_is_concrete(x) for x in invals) and (name in _CONCRETE_ONLY or name in _LINEAR):
        return _concretely(eqn, invals)
    raise Untranslatable(f"no exact rule for the primitive {name}")


def _concretely(eqn, invals: list[np.ndarray]) -> list[np.ndarray]:
    """Run the primitive on concrete operands (integers, booleans, exact floats)."""
    arrays = [_numeric(x, v.aval.dtype) for x, v in zip(invals, eqn.invars)]
    floats_out = any(np.dtype(v.aval.dtype).kind == "f" for v in eqn.outvars)
    if floats_out and eqn.primitive.name not in _CONCRETE_ONLY | _LINEAR:
        raise Untranslatable(f"{eqn.primitive.name} of floats run concretely would round")
    return [_array(o) for o in _bind(eqn, arrays)]


def symbols_for(name: str, shape: tuple[int, ...], named: Sequence[bool], display: dict[sympy.Symbol, Any],
                **assumptions) -> np.ndarray:
    """An object array of fresh symbols named ``name_<1-based indices>``, indexed along the
    axes ``named`` marks (a column's trailing axis of size 1 is not). ``display`` receives
    how each is shown in MathML: the argument with its indices as a subscript (``W_12`` as
    W with subscript 1, 2)."""
    out = np.empty(shape, dtype=object)
    for index in np.ndindex(shape):
        digits = [i for i, keep in zip(index, named) if keep]
        label = name if not digits else f"{name}_{''.join(str(i + 1) for i in digits)}"
        out[index] = sympy.Symbol(label, **assumptions)
        display[out[index]] = sympy.IndexedBase(name)[tuple(i + 1 for i in digits)] if digits else sympy.Symbol(name)
    return out

