"""Truths for Challa, "Math for Understanding Deep Neural Networks" (seed 001), by autodiff.

One sample at a time; a layer accumulates a = W^T x + b with W indexed [previous, current].
"""

import functools

import jax
import jax.numpy as jnp

from reference import forward


def _loss_from_logits(a, y_hat):
    """L = -sum y_hat log softmax(a) (Eq. (2)), stable."""
    return -jnp.sum(y_hat * forward.log_softmax(a))


def batch_loss_gradient(A, Y_hat):
    """jax.grad of Eq. (1): L = -1/S sum_k 1/M sum_j y_hat log y."""
    S, M = A.shape

    def loss(A):
        return -jnp.sum(Y_hat * forward.log_softmax(A, axis=-1)) / (S * M)

    return jax.grad(loss)(A)


def softmax_jacobian(a):
    return jax.jacfwd(forward.softmax)(a)


def _accumulation(x_prev, W, b):
    return W.T @ x_prev + b


def accumulation_weight_derivative(x_prev, W, b):
    """d a_j / d w_{j', j} as the matrix [j', j]: entries [j, j', j] of the full Jacobian."""
    J = jax.jacfwd(_accumulation, argnums=1)(x_prev, W, b)  # [j, j', j'']
    j = jnp.arange(W.shape[1])
    return J[j, :, j].T


def accumulation_bias_derivative(x_prev, W, b):
    J = jax.jacfwd(_accumulation, argnums=2)(x_prev, W, b)
    j = jnp.arange(b.shape[0])
    return J[j, j]


def accumulation_bias_derivative_applied(x_prev, W, b, v):
    """The diagonal of d a / d b, entry by entry times a direction v."""
    return accumulation_bias_derivative(x_prev, W, b) * v


def loss_output_derivative(y, y_hat):
    """dL/dy_j of L = -sum y_hat log y."""
    return jax.grad(forward.cross_entropy)(y, y_hat)


def loss_logit_gradient(a, y_hat):
    """dL/da of L = -sum y_hat log softmax(a), for any targets."""
    return jax.grad(_loss_from_logits)(a, y_hat)


def _layer_vjp(x_prev, W, b, dA):
    return jax.vjp(_accumulation, x_prev, W, b)[1](dA)


def last_layer_weight_gradient(x_prev, W, b, dA):
    return _layer_vjp(x_prev, W, b, dA)[1]


def last_layer_bias_gradient(x_prev, W, b, dA):
    return _layer_vjp(x_prev, W, b, dA)[2]


def clubbed_term(x_prev, W, b, dA):
    return _layer_vjp(x_prev, W, b, dA)[0]


def relu_derivative(a):
    return jax.jvp(forward.relu, (a,), (jnp.ones_like(a),))[1]


def _deeper_loss(x_prev, W, b, W_next, b_next, dA_next, *, side):
    """The last layer's accumulation a^N = W_next^T relu(W^T x + b) + b_next, paired with dA^N."""
    hidden = forward.relu_one_sided(_accumulation(x_prev, W, b), side=side)
    return jnp.vdot(dA_next, _accumulation(hidden, W_next, b_next))


def _deeper_gradient(argnum, index, *, side):
    def gradient(x_prev, W, b, W_next, b_next, dA_next):
        grad = jax.grad(functools.partial(_deeper_loss, side=side), argnums=argnum)
        return grad(x_prev, W, b, W_next, b_next, dA_next)[index]
    return gradient


#: dL/dw^{N-1}_{1,1}, dL/db^{N-1}_1 and dL/db^N_1, left- and right-sided at a hidden kink.
deeper_weight_gradient_left = _deeper_gradient(1, (0, 0), side=-1)
deeper_weight_gradient_right = _deeper_gradient(1, (0, 0), side=+1)
deeper_bias_gradient_left = _deeper_gradient(2, 0, side=-1)
deeper_bias_gradient_right = _deeper_gradient(2, 0, side=+1)
last_bias_gradient_left = _deeper_gradient(4, 0, side=-1)
last_bias_gradient_right = _deeper_gradient(4, 0, side=+1)


def _network_loss(params, x1, y_hat, *, side):
    relu = functools.partial(forward.relu_one_sided, side=side)
    x2 = relu(_accumulation(x1, params["W2"], params["b2"]))
    x3 = relu(_accumulation(x2, params["W3"], params["b3"]))
    return _loss_from_logits(_accumulation(x3, params["W4"], params["b4"]), y_hat)


def _network_gradients(x1, W2, b2, W3, b3, W4, b4, y_hat, *, side):
    params = {"W2": W2, "b2": b2, "W3": W3, "b3": b3, "W4": W4, "b4": b4}
    return jax.grad(functools.partial(_network_loss, side=side))(params, x1, y_hat)


#: At a hidden unit whose accumulation is exactly 0 (ReLU's kink), the left-sided truth
#: (derivative 0) and the right-sided one (derivative 1).
network_gradients_left = functools.partial(_network_gradients, side=-1)
network_gradients_right = functools.partial(_network_gradients, side=+1)


def _update(x1, W2, b2, W3, b3, W4, b4, y_hat, eta, *, side):
    params = {"W2": W2, "b2": b2, "W3": W3, "b3": b3, "W4": W4, "b4": b4}
    grads = _network_gradients(x1, W2, b2, W3, b3, W4, b4, y_hat, side=side)
    return jax.tree_util.tree_map(lambda p, g: p - eta * g, params, grads)


def network_loss(x1, W2, b2, W3, b3, W4, b4, y_hat, eta):
    """The loss an update step lowers (eta unused)."""
    params = {"W2": W2, "b2": b2, "W3": W3, "b3": b3, "W4": W4, "b4": b4}
    return _network_loss(params, x1, y_hat, side=-1)


update_step_left = functools.partial(_update, side=-1)
update_step_right = functools.partial(_update, side=+1)
