"""Derivatives by JAX autodiff, in the shapes the claims compare."""

import jax
import jax.numpy as jnp


def elementwise_derivative(f):
    """$x \\mapsto f'(x)$ for an elementwise $f$: the diagonal of its Jacobian, by a JVP."""

    def derivative(x):
        return jax.jvp(f, (x,), (jnp.ones_like(x),))[1]

    return derivative


def elementwise_backprop(f):
    """$(X, g) \\mapsto J_f(X)^T g$ for an elementwise $f$, by a VJP."""

    def backprop(X, g):
        return jax.vjp(f, X)[1](g)[0]

    return backprop


def jacobian(f):
    """$x \\mapsto \\partial f_i / \\partial x_j$, row $i$, column $j$, by forward mode."""
    return jax.jacfwd(f)
