"""Truths for Vijay, "Deriving Neural Network Gradients" (seed 002), by autodiff.

Tangents ``OD`` are computed with ``jax.jvp``, one direction ``z`` at a time, and the
gradients of section 2 are ``jax.grad`` of the loss $L = \\sum DO \\cdot O + \\sum DOD \\cdot OD$
taken through that JVP: true double back propagation. Row-major batch layout throughout.
"""

import functools

import jax
import jax.numpy as jnp

from reference import forward
from reference.autodiff import elementwise_derivative

softsign_first_derivative = elementwise_derivative(forward.softsign)


def softsign_in_three_forms(names):
    """softsign(x) = x / (1 + |x|) under each of ``names``: the truth of one branch's rewrites."""
    def reference(x):
        value = forward.softsign(x)
        return {name: value for name in names}
    return reference


softsign_rewrites_negative_branch = softsign_in_three_forms(("x/(1-x)", "1/(1-x) - 1", "(1-x)^-1 - 1"))
softsign_rewrites_nonnegative_branch = softsign_in_three_forms(("x/(1+x)", "1 - 1/(1+x)", "1 - (1+x)^-1"))
softsign_second_derivative = elementwise_derivative(softsign_first_derivative)


def _linear(I1, I2, I3):
    """$(O1)_{by} = (I2)_{yx}(I1)_{bx} + (I3)_y$."""
    return I1 @ I2.T + I3[None, :]


def _tangents(f, x, tangents):
    """JVP of ``f`` at ``x`` along each direction ``tangents[:, z]``: shape (b, z, ...)."""
    return jax.vmap(lambda t: jax.jvp(f, (x,), (t,))[1], in_axes=1, out_axes=1)(tangents)


# --- §1: output back propagation --------------------------------------------------------


def activation_input_gradient(I1, DO1):
    return jax.vjp(forward.softsign, I1)[1](DO1)[0]


def _linear_vjp(I1, I2, I3, DO1):
    return jax.vjp(_linear, I1, I2, I3)[1](DO1)


def linear_input_gradient(I1, I2, I3, DO1):
    return _linear_vjp(I1, I2, I3, DO1)[0]


def linear_weight_gradient(I1, I2, I3, DO1):
    return _linear_vjp(I1, I2, I3, DO1)[1]


def linear_bias_gradient(I1, I2, I3, DO1):
    return _linear_vjp(I1, I2, I3, DO1)[2]


def _per_sample_linear_vjp(I1, I2, I3, DO1):
    """Each sample's own (I2, I3) gradients: ``jax.vmap`` over ``b`` of a one-sample VJP."""

    def one(i1, do1):
        return jax.vjp(lambda w, c: _linear(i1[None], w, c)[0], I2, I3)[1](do1)

    return jax.vmap(one)(I1, DO1)


def linear_weight_gradient_per_sample_sum(I1, I2, I3, DO1):
    return jnp.sum(_per_sample_linear_vjp(I1, I2, I3, DO1)[0], axis=0)


def linear_weight_gradient_squared(I1, I2, I3, DO1):
    return jnp.sum(_per_sample_linear_vjp(I1, I2, I3, DO1)[0] ** 2, axis=0)


def linear_bias_gradient_squared(I1, I2, I3, DO1):
    return jnp.sum(_per_sample_linear_vjp(I1, I2, I3, DO1)[1] ** 2, axis=0)


# --- §2.1: activation layer, gradient back propagation ----------------------------------


def activation_tangent_output(I1, ID1):
    return _tangents(forward.softsign, I1, ID1)


def _activation_loss(I1, ID1, DO1, DOD1):
    return jnp.sum(DO1 * forward.softsign(I1)) + jnp.sum(DOD1 * activation_tangent_output(I1, ID1))


def activation_input_gradient_double(I1, ID1, DO1, DOD1):
    return jax.grad(_activation_loss, argnums=0)(I1, ID1, DO1, DOD1)


def activation_tangent_gradient(I1, ID1, DO1, DOD1):
    return jax.grad(_activation_loss, argnums=1)(I1, ID1, DO1, DOD1)


# --- §2.2: linear layer, gradient back propagation --------------------------------------


def linear_tangent_output(I1, ID1, I2, I3):
    return _tangents(lambda i1: _linear(i1, I2, I3), I1, ID1)


def _linear_loss(I1, ID1, I2, I3, DO1, DOD1):
    return jnp.sum(DO1 * _linear(I1, I2, I3)) + jnp.sum(DOD1 * linear_tangent_output(I1, ID1, I2, I3))


_linear_grads = jax.grad(_linear_loss, argnums=(0, 1, 2, 3))


def linear_input_gradient_double(I1, ID1, I2, I3, DO1, DOD1):
    return _linear_grads(I1, ID1, I2, I3, DO1, DOD1)[0]


def linear_tangent_gradient(I1, ID1, I2, I3, DO1, DOD1):
    return _linear_grads(I1, ID1, I2, I3, DO1, DOD1)[1]


def linear_weight_gradient_double(I1, ID1, I2, I3, DO1, DOD1):
    return _linear_grads(I1, ID1, I2, I3, DO1, DOD1)[2]


def linear_bias_gradient_double(I1, ID1, I2, I3, DO1, DOD1):
    return _linear_grads(I1, ID1, I2, I3, DO1, DOD1)[3]


def _per_sample_linear_double(I1, ID1, I2, I3, DO1, DOD1):
    def one(i1, id1, do1, dod1):
        return jax.grad(_linear_loss, argnums=(2, 3))(i1[None], id1[None], I2, I3, do1[None], dod1[None])

    return jax.vmap(one)(I1, ID1, DO1, DOD1)


def linear_weight_gradient_squared_double(I1, ID1, I2, I3, DO1, DOD1):
    return jnp.sum(_per_sample_linear_double(I1, ID1, I2, I3, DO1, DOD1)[0] ** 2, axis=0)


def linear_bias_gradient_squared_double(I1, ID1, I2, I3, DO1, DOD1):
    return jnp.sum(_per_sample_linear_double(I1, ID1, I2, I3, DO1, DOD1)[1] ** 2, axis=0)


# --- §2: the two-layer network ----------------------------------------------------------


def _network(I0, W1, c1, W2, c2, *, side):
    hidden = forward.softsign_one_sided(_linear(I0, W1, c1), side=side)
    return _linear(hidden, W2, c2)


def _network_loss(params, I0, ID0, DO, DOD, *, side):
    def f(i):
        return _network(i, params["W1"], params["c1"], params["W2"], params["c2"], side=side)

    return jnp.sum(DO * f(I0)) + jnp.sum(DOD * _tangents(f, I0, ID0))


def _network_gradients(I0, ID0, W1, c1, W2, c2, DO, DOD, *, side):
    params = {"W1": W1, "c1": c1, "W2": W2, "c2": c2}
    loss = functools.partial(_network_loss, side=side)
    grads, dI, dID = jax.grad(loss, argnums=(0, 1, 2))(params, I0, ID0, DO, DOD)
    return {**grads, "I0": dI, "ID0": dID}


#: At a hidden unit whose pre-activation is exactly 0 (softsign's kink), the left- and
#: right-sided truths: the checker brackets the closed form between them.
network_gradients_left = functools.partial(_network_gradients, side=-1)
network_gradients_right = functools.partial(_network_gradients, side=+1)


def _network_squared(I0, ID0, W1, c1, W2, c2, DO, DOD, *, side):
    params = {"W1": W1, "c1": c1, "W2": W2, "c2": c2}

    def one(i, id_, do, dod):
        return jax.grad(functools.partial(_network_loss, side=side))(params, i[None], id_[None], do[None], dod[None])

    return jax.tree_util.tree_map(lambda g: jnp.sum(g**2, axis=0), jax.vmap(one)(I0, ID0, DO, DOD))


network_squared_gradients_left = functools.partial(_network_squared, side=-1)
network_squared_gradients_right = functools.partial(_network_squared, side=+1)
