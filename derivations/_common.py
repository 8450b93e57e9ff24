"""Forward functions the closed forms are written in terms of (no autodiff)."""

import jax.numpy as jnp


def sigmoid(x):
    r"""$\sigma(x) = 1 / (1 + e^{-x})$."""
    return 1.0 / (1.0 + jnp.exp(-x))


def softmax(x, axis=-1):
    r"""$y_i = e^{x_i} / \sum_j e^{x_j}$, computed with the maximum subtracted (same value)."""
    e = jnp.exp(x - jnp.max(x, axis=axis, keepdims=True))
    return e / jnp.sum(e, axis=axis, keepdims=True)
