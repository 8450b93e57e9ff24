"""Truths for Sharma, "Neural Network Maths" (seed 000), by autodiff of `forward`."""

import jax
import jax.numpy as jnp

from reference import forward
from reference.autodiff import elementwise_backprop, elementwise_derivative, jacobian

sigmoid_derivative = elementwise_derivative(forward.sigmoid)
tanh_derivative = elementwise_derivative(forward.tanh)
relu_derivative = elementwise_derivative(forward.relu)
silu_derivative = elementwise_derivative(forward.silu)

def tanh_value(x):
    """XLA's own tanh: a formulation independent of the printed exponentials."""
    return jnp.tanh(x)


sigmoid_backprop = elementwise_backprop(forward.sigmoid)
tanh_backprop = elementwise_backprop(forward.tanh)
relu_backprop = elementwise_backprop(forward.relu)
silu_backprop = elementwise_backprop(forward.silu)


def softmax_jacobian(x):
    """$\\partial y_i / \\partial x_j$ of softmax, row $i$, column $j$."""
    return jacobian(forward.softmax)(x)


def softmax_jacobian_diagonal(x):
    i = jnp.arange(x.shape[0])
    return softmax_jacobian(x)[i, i]


def softmax_jacobian_offdiagonal(x):
    J = softmax_jacobian(x)
    return jnp.where(jnp.eye(x.shape[0], dtype=bool), 0.0, J)


def softmax_backprop(X, dE_dY):
    """$\\partial E/\\partial X$ for $Y = \\mathrm{softmax}(X)$ (columns), by a VJP."""
    return jax.vjp(lambda z: forward.softmax(z, axis=0), X)[1](dE_dY)[0]


def _linear_vjp(W, X, b, dE_dY):
    return jax.vjp(forward.linear, W, X, b)[1](dE_dY)


def linear_input_gradient(W, X, b, dE_dY):
    return _linear_vjp(W, X, b, dE_dY)[1]


def linear_bias_gradient(W, X, b, dE_dY):
    return _linear_vjp(W, X, b, dE_dY)[2]


def linear_weight_gradient(W, X, b, dE_dY):
    return _linear_vjp(W, X, b, dE_dY)[0]


def cross_entropy_derivative(y_hat, y):
    """$\\partial E / \\partial \\hat{y}$ of $E = -\\sum y \\log \\hat{y}$."""
    return jax.grad(forward.cross_entropy)(y_hat, y)


def network_loss(params, x, y):
    """§2 network with cross-entropy, from logits (stable log-softmax)."""
    W1, b1, W2, b2, W3, b3 = (params[k] for k in ("W1", "b1", "W2", "b2", "W3", "b3"))
    h1 = forward.sigmoid(forward.linear(W1, x, b1))
    h2 = forward.tanh(forward.linear(W2, h1, b2))
    logits = forward.linear(W3, h2, b3)[:, 0]
    return -jnp.sum(y * forward.log_softmax(logits))


def network_gradients(x, W1, b1, W2, b2, W3, b3, y):
    """`jax.grad` of the whole network's loss for every parameter."""
    params = {"W1": W1, "b1": b1, "W2": W2, "b2": b2, "W3": W3, "b3": b3}
    return jax.grad(network_loss)(params, x, y)
