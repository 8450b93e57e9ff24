"""Challa, "Fix for overflow issue": the stated limits, and why scaling to them is not enough."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import derivations.challa2022 as challa


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_stated_limit_is_where_exp_overflows(dtype):
    stated = challa.STATED_EXP_LIMITS[dtype]
    exact = float(np.log(np.finfo(dtype).max))  # 88.72 and 709.78
    assert stated <= exact < stated + 1, "'about 709 for double and 88 for float'"
    exp = jax.jit(jnp.exp)
    assert np.isfinite(exp(jnp.asarray(exact - 0.01, dtype)))
    assert np.isinf(exp(jnp.asarray(exact + 0.01, dtype)))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_logits_scaled_to_the_limit_still_overflow_the_sum(dtype):
    # Three logits scaled down to exactly the limit: each exp is finite, their sum is not.
    a = jnp.full(3, 1000.0, dtype)
    y_hat = jnp.asarray([1.0, 0.0, 0.0], dtype)
    scaled = jax.jit(challa.last_layer_delta_scaled_input)(a, y_hat)
    shifted = jax.jit(challa.last_layer_delta_shifted_input)(a, y_hat)
    truth = [1 / 3 - 1, 1 / 3, 1 / 3]
    # The denominator overflows to inf: every softmax output collapses to 0, so dA = -y_hat.
    np.testing.assert_array_equal(np.asarray(scaled) + np.asarray(y_hat), 0.0)
    assert not np.allclose(scaled, truth, atol=0.1)
    np.testing.assert_allclose(shifted, truth, rtol=1e-6)
