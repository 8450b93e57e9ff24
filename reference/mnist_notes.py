"""Truths for the handwritten notes on neural networks and MNIST (seed 003), by autodiff.

Layers are Z = W^T X + B (each neuron's weights a column of W), as in the notes.
"""

import jax
import jax.numpy as jnp

from reference import forward
from reference.autodiff import elementwise_derivative


def multipath_chain_rule(t):
    """d/dt of z = h(f(t), g(t)) with f = sigmoid, g(t) = t^2, h(u, y) = u y, elementwise."""
    return elementwise_derivative(lambda s: forward.sigmoid(s) * s**2)(t)


def _neuron(w, u, b):
    return w @ u + b


def neuron_weight_gradient(w, u, b):
    return jax.grad(_neuron, argnums=0)(w, u, b)


def neuron_bias_gradient(w, u, b):
    return jax.grad(_neuron, argnums=2)(w, u, b)


relu_derivative = elementwise_derivative(forward.relu)
sigmoid_derivative = elementwise_derivative(forward.sigmoid)


def softmax_offdiagonal(z):
    J = jax.jacfwd(forward.softmax)(z)
    return jnp.where(jnp.eye(z.shape[0], dtype=bool), 0.0, J)


def sse_multiple_samples(y_pred, y):
    """L_1 + L_2 + ..., each sample's own squared error."""
    return jnp.sum(jax.vmap(lambda p, t: (t - p) ** 2)(y_pred, y))


def cross_entropy(y_hat, y):
    return forward.cross_entropy(y_hat, y)


def _loss_from_logits(z, y):
    return -jnp.sum(y * forward.log_softmax(z))


def output_delta(z, y):
    return jax.grad(_loss_from_logits)(z, y)


def delta_recursion(z, W, S):
    """dL/dz of the previous layer given S = dL/dz of the next, Z_next = W^T sigmoid(z) + B."""
    return jax.vjp(lambda v: W.T @ forward.sigmoid(v), z)[1](S)[0]


def delta_recursion_row_weights(z, W, S):
    """The same with each neuron's weights a row: Z_next = W sigmoid(z) + B."""
    return jax.vjp(lambda v: W @ forward.sigmoid(v), z)[1](S)[0]


def _loss(params, x, y):
    a1 = forward.sigmoid(params["W1"].T @ x + params["B1"])
    return _loss_from_logits(params["W2"].T @ a1 + params["B2"], y)


def network_gradients(x, W1, B1, W2, B2, y):
    return jax.grad(_loss)({"W1": W1, "B1": B1, "W2": W2, "B2": B2}, x, y)


def _step(params, grads, alpha):
    return jax.tree_util.tree_map(lambda p, g: p - alpha * g, params, grads)


def gradient_descent_step(x, W1, B1, W2, B2, y, alpha):
    params = {"W1": W1, "B1": B1, "W2": W2, "B2": B2}
    return _step(params, jax.grad(_loss)(params, x, y), alpha)


def batch_gradient_descent_step(X, W1, B1, W2, B2, Y, alpha):
    """One update with the gradient of the batch's total loss."""
    params = {"W1": W1, "B1": B1, "W2": W2, "B2": B2}

    def total(p):
        return jnp.sum(jax.vmap(_loss, in_axes=(None, 0, 0))(p, X, Y))

    return _step(params, jax.grad(total)(params), alpha)


def stochastic_epoch(X, W1, B1, W2, B2, Y, alpha):
    """One update per sample, each with jax.grad at the current parameters."""
    params = {"W1": W1, "B1": B1, "W2": W2, "B2": B2}
    for k in range(X.shape[0]):
        params = _step(params, jax.grad(_loss)(params, X[k], Y[k]), alpha)
    return params
