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


def _path_graph(a, b):
    """b -> c -> e, a -> e, e -> d, (e, d) -> f, with c = tanh b, e = a c + a^2, d = sigmoid(e), f = e d."""
    e = a * jnp.tanh(b) + a**2
    return e * forward.sigmoid(e)


def path_sum(a, b):
    """df/da of the path graph, elementwise (a JVP along ones)."""
    return jax.jvp(lambda v: _path_graph(v, b), (a,), (jnp.ones_like(a),))[1]


def layer_neuron_by_neuron(W, X, B):
    """Each neuron on its own, z_i = w_i^T X + b_i, stacked."""
    return jnp.stack([jnp.vdot(W[:, i], X) + B[i] for i in range(W.shape[1])])


def softmax_last_output(z):
    return forward.softmax(z)[-1]


def softmax_jacobian(z):
    return jax.jacfwd(forward.softmax)(z)


def _neuron(w, u, b):
    return w @ u + b


def neuron_weight_gradient(w, u, b):
    return jax.grad(_neuron, argnums=0)(w, u, b)


def neuron_bias_gradient(w, u, b, v):
    """The JVP of z = w . u + b along a direction v of b."""
    return jax.jvp(lambda bias: _neuron(w, u, bias), (b,), (v,))[1]


relu_derivative = elementwise_derivative(forward.relu)
sigmoid_derivative = elementwise_derivative(forward.sigmoid)


def softmax_offdiagonal(z):
    J = jax.jacfwd(forward.softmax)(z)
    return jnp.where(jnp.eye(z.shape[0], dtype=bool), 0.0, J)


def cross_entropy(y_hat, y):
    return forward.cross_entropy(y_hat, y)


def _loss_from_logits(z, y):
    return -jnp.sum(y * forward.log_softmax(z))


def output_delta(z, y):
    return jax.grad(_loss_from_logits)(z, y)


def mean_cross_entropy_gradient(Z, Y):
    """jax.grad of the mean over samples of -sum y log softmax(z)."""
    return jax.grad(lambda A: jnp.mean(jax.vmap(_loss_from_logits)(A, Y)))(Z)


def neuron_delta(z, w, S):
    """dL/dz of one neuron z (shape 1) feeding Z_next = w sigmoid(z) + B, cotangent S."""
    return jax.vjp(lambda v: w * forward.sigmoid(v), z)[1](S)[0]


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


def network_loss(x, W1, B1, W2, B2, y, alpha):
    """The loss a gradient-descent step lowers (alpha unused)."""
    return _loss({"W1": W1, "B1": B1, "W2": W2, "B2": B2}, x, y)


def batch_total_loss(X, W1, B1, W2, B2, Y, alpha):
    """The batch's total loss, which a batch step (or a stochastic epoch) lowers (alpha unused)."""
    return jnp.sum(jax.vmap(_loss, in_axes=(None, 0, 0))({"W1": W1, "B1": B1, "W2": W2, "B2": B2}, X, Y))


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
