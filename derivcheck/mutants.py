"""Planted faults: wrong versions of a closed form that a sound checker must catch.

Each mutation operator takes a closed form and example arguments and returns a mutant with
the same signature, or None where the operator does not apply (no transpose to drop, no two
arguments of one shape to swap). Output operators change what the closed form returns;
jaxpr operators change the computation itself, rewriting equations of the closed form's
jaxpr (nested jitted helpers included) while keeping every shape.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.extend import core

from derivcheck._bounds import nested_jaxpr
from derivcheck._composed import Composed

__all__ = [
    "MUTANTS",
    "ONE_ELEMENT_ULPS",
    "dropped_transposes",
    "extra_transpose",
    "factor_of_two",
    "first_term_only",
    "host_mutants_of",
    "one_branch_negated",
    "one_element_off",
    "one_over_n",
    "sign_flip",
    "swapped_arguments",
    "wrong_reduction_axis",
]

#: How far :func:`one_element_off` moves one element: this many units in the last place
#: of the checked dtype (2^13 ulps: 1e-3 relative in float32, 2e-12 in float64), but never
#: more than :data:`ONE_ELEMENT_MOST` of the element.
ONE_ELEMENT_ULPS = 2**13
#: The cap binds in bfloat16 and float16 only, whose 2^13 ulps (64 and 8 times the value)
#: would be no small fault at all: there the element is doubled (128 ulps of bfloat16,
#: 1024 of float16). A move of a few ulps is below what any bound of a computation in
#: these formats resolves: its rounding, charged operation by operation, is 20 to 50 per
#: cent of a small network's gradient in bfloat16 (README, "Devices and precision").
ONE_ELEMENT_MOST = 1.0


def one_element_step(dtype) -> float:
    """The relative move of :func:`one_element_off` in ``dtype``."""
    return min(ONE_ELEMENT_ULPS * float(jnp.finfo(dtype).eps), ONE_ELEMENT_MOST)

Mutator = Callable[[Callable[..., Any], tuple[Any, ...]], "Callable[..., Any] | None"]


@dataclasses.dataclass(frozen=True)
class _Negated:
    def __call__(self, out):
        return jax.tree_util.tree_map(jnp.negative, out)


@dataclasses.dataclass(frozen=True)
class _Doubled:
    def __call__(self, out):
        return jax.tree_util.tree_map(lambda x: 2 * x, out)


@dataclasses.dataclass(frozen=True)
class _DividedBy:
    n: int

    def __call__(self, out):
        return jax.tree_util.tree_map(lambda x: x / self.n, out)


@dataclasses.dataclass(frozen=True)
class _LargestElementOff:
    def __call__(self, out):
        leaves, tree = jax.tree_util.tree_flatten(out)
        first = leaves[0]
        flat = jnp.ravel(first)
        is_largest = jnp.arange(flat.size) == jnp.argmax(jnp.abs(flat))
        step = one_element_step(first.dtype)
        bumped = jnp.where(is_largest, flat * (1 + step), flat).reshape(first.shape)
        return jax.tree_util.tree_unflatten(tree, [bumped, *leaves[1:]])


@dataclasses.dataclass(frozen=True)
class _SquaresTransposed:
    def __call__(self, out):
        return jax.tree_util.tree_map(lambda x: x.T if x.ndim == 2 and x.shape[0] == x.shape[1] else x, out)


def sign_flip(fn, args=()):
    """``-f``."""
    return Composed(fn, _Negated())


def factor_of_two(fn, args=()):
    """``2 f``."""
    return Composed(fn, _Doubled())


def one_over_n(fn, args=()):
    """``f / N`` with N the size of the first output (a mean where a sum is meant);
    None where that size is 1."""
    first = jax.tree_util.tree_leaves(jax.eval_shape(fn, *args))[0]
    n = int(np.prod(first.shape, dtype=int))
    return None if n == 1 else Composed(fn, _DividedBy(n))


def one_element_off(fn, args=()):
    """The largest-magnitude element of the first output, :data:`ONE_ELEMENT_ULPS` ulps off."""
    return Composed(fn, _LargestElementOff())


def extra_transpose(fn, args=()):
    """Every square matrix output transposed; None if there is none."""
    shapes = jax.tree_util.tree_leaves(jax.eval_shape(fn, *args))
    if not any(len(s.shape) == 2 and s.shape[0] == s.shape[1] > 1 for s in shapes):
        return None
    return Composed(fn, _SquaresTransposed())


def swapped_arguments(fn, args=()):
    """The first two arguments of the same shape and dtype swapped; None if there are none."""
    for i in range(len(args)):
        for j in range(i + 1, len(args)):
            if np.shape(args[i]) == np.shape(args[j]) and jnp.result_type(args[i]) == jnp.result_type(args[j]):
                order = list(range(len(args)))
                order[i], order[j] = j, i
                return Composed(fn, order=tuple(order))
    return None


# --- Operators on the jaxpr ---------------------------------------------------------------


def _applies_anywhere(jaxpr, rewrite) -> bool:
    for eqn in jaxpr.eqns:
        inner = nested_jaxpr(eqn)
        if rewrite.applies(eqn) or (inner is not None and _applies_anywhere(inner[0], rewrite)):
            return True
    return False


def _evaluate(jaxpr, consts, args, rewrite):
    env: dict[Any, Any] = dict(zip(jaxpr.constvars, consts))
    env.update(zip(jaxpr.invars, args))

    def read(v):
        return v.val if isinstance(v, core.Literal) else env[v]

    for eqn in jaxpr.eqns:
        ins = [read(v) for v in eqn.invars]
        outs = rewrite(eqn, ins)
        inner = nested_jaxpr(eqn)
        if outs is None and inner is not None and _applies_anywhere(inner[0], rewrite):
            outs = _evaluate(inner[0], inner[1], ins, rewrite)  # inlined, rewritten inside
        if outs is None:
            outs = eqn.primitive.bind(*ins, **eqn.params)
            outs = outs if eqn.primitive.multiple_results else [outs]
        env.update(zip(eqn.outvars, outs))
    return [read(v) for v in jaxpr.outvars]


def _rewritten(fn, rewrite: Callable[[Any, list[Any]], list[Any] | None], args) -> Callable[..., Any] | None:
    """``fn`` with each equation that ``rewrite`` handles replaced by its result, nested
    calls (a jitted helper such as ``jnp.where``) included.

    ``rewrite(eqn, inputs)`` returns the replacement outputs, or None to keep the equation.
    None where no equation is rewritten at these argument shapes.
    """
    if not _applies_anywhere(jax.make_jaxpr(fn)(*args).jaxpr, rewrite):
        return None

    def mutant(*a):
        flat, in_tree = jax.tree_util.tree_flatten(a)
        closed, shape = jax.make_jaxpr(lambda *x: fn(*jax.tree_util.tree_unflatten(in_tree, list(x))),
                                       return_shape=True)(*flat)
        outs = _evaluate(closed.jaxpr, closed.consts, flat, rewrite)
        return jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(shape), outs)

    return mutant


def _rule(applies: Callable[[Any], bool]):
    def wrap(replace):
        def rewrite(eqn, ins):
            return replace(eqn, ins) if applies(eqn) else None

        rewrite.applies = applies
        return rewrite

    return wrap


def _droppable(eqn) -> bool:
    return eqn.primitive.name == "transpose" and eqn.invars[0].aval.shape == eqn.outvars[0].aval.shape


@_rule(_droppable)
def _drop_transpose(eqn, ins):
    return [ins[0]]


def _swappable_reduction(eqn) -> bool:
    if eqn.primitive.name != "reduce_sum" or len(eqn.params["axes"]) != 1:
        return False
    shape, (axis,) = eqn.invars[0].aval.shape, eqn.params["axes"]
    return any(k != axis and shape[k] == shape[axis] for k in range(len(shape)))


@_rule(_swappable_reduction)
def _swap_reduction_axis(eqn, ins):
    shape, (axis,) = eqn.invars[0].aval.shape, eqn.params["axes"]
    other = next(k for k in range(len(shape)) if k != axis and shape[k] == shape[axis])
    x = jnp.swapaxes(ins[0], axis, other)
    return [eqn.primitive.bind(x, **eqn.params)]


def _nontrivial_sum(eqn) -> bool:
    if eqn.primitive.name != "reduce_sum":
        return False
    shape = eqn.invars[0].aval.shape
    return any(shape[a] > 1 for a in eqn.params["axes"])


@_rule(_nontrivial_sum)
def _first_term(eqn, ins):
    axes = eqn.params["axes"]
    start = [0] * ins[0].ndim
    sizes = [1 if k in axes else n for k, n in enumerate(ins[0].shape)]
    first = lax.dynamic_slice(ins[0], start, sizes)
    return [jnp.reshape(first, eqn.outvars[0].aval.shape)]


def _float_select(eqn) -> bool:
    return eqn.primitive.name == "select_n" and jnp.issubdtype(eqn.outvars[0].aval.dtype, jnp.floating)


@_rule(_float_select)
def _negate_last_case(eqn, ins):
    predicate, *cases = ins
    cases[-1] = -cases[-1]
    return [lax.select_n(predicate, *cases)]


def dropped_transposes(fn, args=()):
    """Every shape-preserving transpose replaced by the identity."""
    return _rewritten(fn, _drop_transpose, args)


def wrong_reduction_axis(fn, args=()):
    """Each one-axis sum taken over another axis of the same size."""
    return _rewritten(fn, _swap_reduction_axis, args)


def first_term_only(fn, args=()):
    """Each sum replaced by its first term: a missing batch (or class) sum."""
    return _rewritten(fn, _first_term, args)


def one_branch_negated(fn, args=()):
    """The last case of every float ``select`` negated: one branch's sign wrong (the sign of
    a kinked derivative such as softsign's σ'' on one side)."""
    return _rewritten(fn, _negate_last_case, args)


#: The mutation operators, by name: ``operator(closed_form, example_args)`` returns a
#: mutant, or None where it does not apply at those argument shapes.
MUTANTS: dict[str, Mutator] = {
    "sign flip": sign_flip,
    "factor of 2": factor_of_two,
    "factor of 1/N": one_over_n,
    f"one element off by {ONE_ELEMENT_ULPS} ulps": one_element_off,
    "dropped transpose": dropped_transposes,
    "extra transpose": extra_transpose,
    "wrong reduction axis": wrong_reduction_axis,
    "missing sum (first term only)": first_term_only,
    "one branch negated": one_branch_negated,
    "swapped arguments": swapped_arguments,
}


# --- Operators on host (NumPy) closed forms --------------------------------------------------


def _host_outputs(fn, change):
    from derivcheck._host import HostClosedForm

    def mutant(*args):
        return jax.tree_util.tree_map(change, fn(*args))

    mutant.__name__ = getattr(fn, "__name__", "host")
    return HostClosedForm(mutant)


def _host_one_element_off(x, dtype):
    flat = np.ravel(x)
    k = np.argmax(np.abs(flat))
    # The checked dtype's ulps, whatever the evaluation's: a real fault does not shrink
    # when the same code runs in float64 to measure its rounding.
    step = one_element_step(dtype)
    bumped = np.where(np.arange(flat.size) == k, flat * (1 + step), flat)
    return np.reshape(bumped, np.shape(x)).astype(flat.dtype)


def host_mutants_of(fn, args, dtype: str = "float64") -> dict[str, Callable[..., Any]]:
    """The output operators of :data:`MUTANTS`, written in NumPy, for a closed form run on
    the host (``fn`` takes and returns NumPy arrays): the same faults, planted where the
    bound of a host closed form is made (its NumPy tracing, or its measured rounding)."""
    from derivcheck._host import HostClosedForm

    host = fn if isinstance(fn, HostClosedForm) else HostClosedForm(fn)
    leaves = jax.tree_util.tree_leaves(host.output_shape(args))
    size = int(np.prod(leaves[0].shape, dtype=int))
    out: dict[str, Callable[..., Any]] = {
        "host: sign flip": _host_outputs(host.fn, np.negative),
        "host: factor of 2": _host_outputs(host.fn, lambda x: 2 * x),
        f"host: one element off by {ONE_ELEMENT_ULPS} ulps": _host_outputs(
            host.fn, lambda x: _host_one_element_off(x, dtype)),
    }
    if size > 1:
        out["host: factor of 1/N"] = _host_outputs(host.fn, lambda x: x / size)
    if any(len(leaf.shape) == 2 and leaf.shape[0] == leaf.shape[1] > 1 for leaf in leaves):
        out["host: extra transpose"] = _host_outputs(
            host.fn, lambda x: np.transpose(x) if np.ndim(x) == 2 and x.shape[0] == x.shape[1] else x)
    swapped = swapped_arguments(host.fn, args)
    if swapped is not None:
        out["host: swapped arguments"] = HostClosedForm(swapped)
    return out
