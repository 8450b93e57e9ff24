"""The error-bound interpreter: bounds hold for real float32 arithmetic, and are tight."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from derivcheck._bounds import UnsupportedPrimitive, evaluate_with_bound


def _sigmoid_derivative(x):
    s = 1 / (1 + jnp.exp(-x))
    return s * (1 - s)


def _softmax_jacobian_vector(x):
    y = jnp.exp(x - jnp.max(x))
    y = y / jnp.sum(y)
    return (jnp.diag(y) - jnp.outer(y, y)) @ x


def _network_like(x):
    W = jnp.reshape(jnp.arange(x.size * x.size, dtype=x.dtype), (x.size, x.size)) / 7
    return jnp.tanh(W @ x) * jnp.log1p(x**2) - x**3


FUNCTIONS = [_sigmoid_derivative, _softmax_jacobian_vector, _network_like]
vectors = hnp.arrays(np.float32, st.integers(1, 6),
                     elements=st.floats(-30, 30, width=32, allow_subnormal=False))


@pytest.mark.parametrize("fn", FUNCTIONS, ids=lambda f: f.__name__)
@given(x=vectors)
def test_float32_error_never_exceeds_its_bound(fn, x):
    value, bound = jax.jit(lambda x: evaluate_with_bound(fn, x))(jnp.asarray(x))
    exact = fn(jnp.asarray(x, jnp.float64))
    error = np.abs(np.asarray(value, np.float64) - np.asarray(exact))
    assert np.all(error <= np.asarray(bound) + 1e-300), (error, bound)


def test_exact_operations_have_zero_bound():
    x = jnp.array([1.5, -2.0, 3.25])
    _, bound = evaluate_with_bound(lambda x: jnp.abs(-x[::-1]).reshape(3, 1).T, x)
    assert np.all(np.asarray(bound) == 0)


def test_bound_is_a_few_ulps_for_one_product():
    x = jnp.array([3.0], jnp.float32)
    _, bound = evaluate_with_bound(lambda x: x * jnp.float32(1.1), x)
    eps = np.finfo(np.float32).eps
    assert eps * 3.3 <= float(bound[0]) <= 2 * eps * 3.3


def test_cancellation_is_bounded_by_the_terms_not_the_result():
    x = jnp.array([1e8, 1.0, -1e8], jnp.float32)
    value, bound = evaluate_with_bound(jnp.sum, x)
    assert float(bound) >= 2 * np.finfo(np.float32).eps * 2e8  # (K - 1) eps sum|x|
    assert abs(float(value) - 1.0) <= float(bound)


def test_unknown_primitive_is_refused_not_guessed():
    def loop(x):
        return jax.lax.while_loop(lambda c: c[0] < 3, lambda c: (c[0] + 1, c[1] * 2), (0, x))[1]

    with pytest.raises(UnsupportedPrimitive, match="while"):
        evaluate_with_bound(loop, jnp.ones(2))
