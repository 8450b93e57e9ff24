"""Forward definitions, from elementary operations and numerically stable."""

import jax
import jax.numpy as jnp


def sigmoid(x):
    r"""$\sigma(x) = 1/(1 + e^{-x})$, evaluated as $e^{x}/(1 + e^{x})$ for $x < 0$.

    Each branch is the exact function on its side, so autodiff of either is the true
    derivative and no branch overflows.
    """
    negative = x < 0
    z = jnp.exp(jnp.where(negative, x, -x))  # exp(-|x|), never overflows
    return jnp.where(negative, z, 1.0) / (1.0 + z)


def tanh(x):
    r"""$\tanh(x) = 2\sigma(2x) - 1$."""
    return 2.0 * sigmoid(2.0 * x) - 1.0


def relu(x):
    r"""$\max(x, 0)$."""
    return jnp.maximum(x, 0.0)


def silu(x):
    r"""$x\,\sigma(x)$."""
    return x * sigmoid(x)


def softmax(x, axis=-1):
    r"""$e^{x_i} / \sum_j e^{x_j}$ with the (constant) maximum subtracted."""
    shifted = x - jax.lax.stop_gradient(jnp.max(x, axis=axis, keepdims=True))
    e = jnp.exp(shifted)
    return e / jnp.sum(e, axis=axis, keepdims=True)


def log_softmax(x, axis=-1):
    r"""$x_i - \log \sum_j e^{x_j}$, stable."""
    shifted = x - jax.lax.stop_gradient(jnp.max(x, axis=axis, keepdims=True))
    return shifted - jnp.log(jnp.sum(jnp.exp(shifted), axis=axis, keepdims=True))


def cross_entropy(y_hat, y):
    r"""$E = -\sum_i y_i \log \hat{y}_i$ for probabilities $\hat{y}$."""
    return -jnp.sum(y * jnp.log(y_hat))


def linear(W, X, b):
    r"""$Y = WX + b$."""
    return W @ X + b


def softsign(x):
    r"""$x / (1 + |x|)$."""
    return x / (1.0 + jnp.abs(x))


def softsign_one_sided(x, *, side: int):
    r"""$x / (1 + s x)$ with $s = \operatorname{sign} x$, and $s = $ ``side`` at $x = 0$.

    Equal to softsign everywhere; its autodiff at an exact 0 inside a computation is the
    left-sided (``side=-1``) or right-sided (``side=+1``) derivative, whatever JAX's own
    convention for ``abs`` at 0. ``s`` is piecewise constant, so it carries no derivative.
    """
    s = jnp.where(x > 0, 1.0, -1.0) if side < 0 else jnp.where(x >= 0, 1.0, -1.0)
    return x / (1.0 + s * x)


def relu_one_sided(x, *, side: int):
    r"""$\max(x, 0)$ whose autodiff at an exact 0 is the left (``side=-1``: 0) or right
    (``side=+1``: 1) derivative, whatever JAX's convention for ``maximum`` at a tie."""
    active = x > 0 if side < 0 else x >= 0
    return jnp.where(active, x, 0.0)
