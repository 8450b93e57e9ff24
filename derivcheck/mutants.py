"""Planted faults: wrong versions of a closed form that a sound checker must catch.

Each mutant is a function with the closed form's signature. Output-level mutants change
what it returns; :func:`dropped_transposes` changes the computation itself, replacing
every shape-preserving ``transpose`` in the closed form's jaxpr by the identity (a
transpose that changes the shape cannot be dropped from a well-formed formula).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax.extend import core

__all__ = ["MUTANTS", "count_droppable_transposes", "dropped_transposes", "factor_of_two",
           "one_element_off", "sign_flip"]

ONE_ELEMENT_RELATIVE = 1e-3


def sign_flip(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``-f``."""
    return lambda *args: jax.tree_util.tree_map(jnp.negative, fn(*args))


def factor_of_two(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``2 f``."""
    return lambda *args: jax.tree_util.tree_map(lambda x: 2 * x, fn(*args))


def one_element_off(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The largest-magnitude element of the first output, off by 1e-3 relative."""

    def mutant(*args):
        out = fn(*args)
        leaves, tree = jax.tree_util.tree_flatten(out)
        first = leaves[0]
        flat = jnp.ravel(first)
        is_largest = jnp.arange(flat.size) == jnp.argmax(jnp.abs(flat))
        bumped = jnp.where(is_largest, flat * (1 + ONE_ELEMENT_RELATIVE), flat).reshape(first.shape)
        return jax.tree_util.tree_unflatten(tree, [bumped, *leaves[1:]])

    return mutant


def _droppable(eqn) -> bool:
    return eqn.primitive.name == "transpose" and eqn.invars[0].aval.shape == eqn.outvars[0].aval.shape


def count_droppable_transposes(fn: Callable[..., Any], *args: Any) -> int:
    """How many shape-preserving transposes ``fn`` makes at these argument shapes."""
    return sum(_droppable(e) for e in jax.make_jaxpr(fn)(*args).jaxpr.eqns)


def dropped_transposes(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` with every shape-preserving top-level transpose replaced by the identity."""

    def mutant(*args):
        flat, in_tree = jax.tree_util.tree_flatten(args)
        closed, shape = jax.make_jaxpr(lambda *a: fn(*jax.tree_util.tree_unflatten(in_tree, list(a))),
                                       return_shape=True)(*flat)
        env: dict[Any, Any] = dict(zip(closed.jaxpr.constvars, closed.consts))
        env.update(zip(closed.jaxpr.invars, flat))

        def read(v):
            return v.val if isinstance(v, core.Literal) else env[v]

        for eqn in closed.jaxpr.eqns:
            ins = [read(v) for v in eqn.invars]
            if _droppable(eqn):
                outs = [ins[0]]
            else:
                outs = eqn.primitive.bind(*ins, **eqn.params)
                outs = outs if eqn.primitive.multiple_results else [outs]
            env.update(zip(eqn.outvars, outs))
        return jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(shape),
                                            [read(v) for v in closed.jaxpr.outvars])

    return mutant


#: The planted faults, by name.
MUTANTS: dict[str, Callable[[Callable[..., Any]], Callable[..., Any]]] = {
    "sign flip": sign_flip,
    "factor of 2": factor_of_two,
    "one element off by 1e-3": one_element_off,
    "dropped transpose": dropped_transposes,
}
