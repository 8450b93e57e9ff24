"""Truths for Dey, "Basic Operations of Neural Networks" (seed 004), by autodiff.

Columns throughout. A derivative (a row in the document) is the transpose of the gradient.
"""

import jax
import jax.numpy as jnp

from reference import forward


def _softmax_column(s):
    return forward.softmax(s, axis=0)


def _cost(a, y):
    return forward.cross_entropy(a, y)


def _output_cost(s, y):
    """C as a function of the output layer's pre-activation."""
    return _cost(_softmax_column(s), y)


def bias_jacobian_applied(a_prev, W, b, v):
    """The JVP of s = W a + b along a direction v of b."""
    return jax.jvp(lambda bias: forward.linear(W, a_prev, bias), (b,), (v,))[1]


def input_jacobian(a_prev, W, b):
    """d s / d a of s = W a + b, as an (N, M) matrix."""
    return jax.jacfwd(lambda a: (forward.linear(W, a, b))[:, 0])(a_prev)[:, :, 0]


def softmax_jacobian(s):
    """d a_i / d s_j of softmax, row i."""
    return jax.jacfwd(lambda v: _softmax_column(v)[:, 0])(s)[:, :, 0]


def sigmoid_jacobian(s):
    return jax.jacfwd(lambda v: forward.sigmoid(v)[:, 0])(s)[:, :, 0]


def cost_derivative(a, y):
    return jax.grad(_cost)(a, y).T


def output_cost_derivative(s, y):
    return jax.grad(_output_cost)(s, y).T


def output_delta(s, y):
    return jax.grad(_output_cost)(s, y)


def weight_derivative_tensor(a_prev, W, b):
    """d s_i / d W_kj of s = W a + b, indexed [j, k, i] as in Eq. (10)."""
    jac = jax.jacfwd(lambda w: forward.linear(w, a_prev, b)[:, 0])(W)  # [i, k, j]
    return jnp.transpose(jac, (2, 1, 0))


def _output_layer_cost(W, a_prev, b, y):
    return _output_cost(forward.linear(W, a_prev, b), y)


def output_weight_gradient(a_prev, W, b, y):
    return jax.grad(_output_layer_cost)(W, a_prev, b, y)


def output_weight_derivative(a_prev, W, b, y):
    return output_weight_gradient(a_prev, W, b, y).T


def _mixing(s, A):
    return jnp.tanh(A @ s)


def cost_derivative_any_activation(s, A, g):
    """dC/ds, a row, for C = g . tanh(A s) (so that grad_a C = g)."""
    return jax.grad(lambda v: jnp.vdot(g, _mixing(v, A)))(s).T


def delta_any_activation(s, A, g):
    """grad_s C for C = g . tanh(A s)."""
    return jax.grad(lambda v: jnp.vdot(g, _mixing(v, A)))(s)


def delta_recursion_any_activation(s, A, W_next, delta_next):
    """A VJP of s^(l+1) = W^(l+1) tanh(A s^(l)) with cotangent delta^(l+1)."""
    return jax.vjp(lambda v: W_next @ _mixing(v, A), s)[1](delta_next)[0]


def steepest_ascent(s, y):
    """The autodiff gradient's unit direction, and the JVP of C along it (the rate of increase)."""
    g = jax.grad(_output_cost)(s, y)
    direction = g / jnp.linalg.norm(g)
    return {"direction": direction, "rate": jax.jvp(lambda v: _output_cost(v, y), (s,), (direction,))[1]}


def delta_recursion(s, W_next, delta_next):
    """delta^(l) = dC/ds^(l) given delta^(l+1) = dC/ds^(l+1): a VJP of s^(l+1)(s^(l))."""
    return jax.vjp(lambda v: W_next @ forward.sigmoid(v), s)[1](delta_next)[0]


def augmented_weight_gradient(a_prev, W, b, y):
    def cost(W_aug):
        augmented = jnp.concatenate([a_prev, jnp.ones((1, 1), a_prev.dtype)], axis=0)
        return _output_cost(W_aug @ augmented, y)

    return jax.grad(cost)(jnp.concatenate([W, b], axis=1))


def _network_cost(params, a0, y):
    a1 = forward.sigmoid(forward.linear(params["W1"], a0, params["b1"]))
    return _output_cost(forward.linear(params["W2"], a1, params["b2"]), y)


def network_gradients(a0, W1, b1, W2, b2, y):
    return jax.grad(_network_cost)({"W1": W1, "b1": b1, "W2": W2, "b2": b2}, a0, y)


def first_layer_weight_gradient(a0, W1, b1, W2, b2, y):
    return network_gradients(a0, W1, b1, W2, b2, y)["W1"]


def gradient_descent_step(a0, W1, b1, W2, b2, y, eta):
    params = {"W1": W1, "b1": b1, "W2": W2, "b2": b2}
    grads = jax.grad(_network_cost)(params, a0, y)
    return jax.tree_util.tree_map(lambda p, g: p - eta * g, params, grads)


def network_cost(a0, W1, b1, W2, b2, y, eta):
    """The cost an update of Eq. (14) lowers (eta unused)."""
    return _network_cost({"W1": W1, "b1": b1, "W2": W2, "b2": b2}, a0, y)


def minibatch_mean_cost(A0, W1, b1, W2, b2, Y, eta):
    """The mean cost over the minibatch, which an update of Eq. (15) lowers (eta unused)."""
    return jnp.mean(jax.vmap(_network_cost, in_axes=(None, 0, 0))({"W1": W1, "b1": b1, "W2": W2, "b2": b2}, A0, Y))


def minibatch_step(A0, W1, b1, W2, b2, Y, eta):
    params = {"W1": W1, "b1": b1, "W2": W2, "b2": b2}

    def mean_cost(p):
        return jnp.mean(jax.vmap(_network_cost, in_axes=(None, 0, 0))(p, A0, Y))

    grads = jax.grad(mean_cost)(params)
    return jax.tree_util.tree_map(lambda p, g: p - eta * g, params, grads)
