"""Kinks inside a computation: a hidden unit's pre-activation exactly at softsign's 0."""

import dataclasses

import jax.numpy as jnp
import numpy as np

import derivations.vijay2019 as closed_forms
import derivcheck
import reference.vijay2019 as truths

(NETWORK,) = derivcheck.select(pattern="vijay2019/sec2-network-double-backprop")


def _point_with_a_hidden_zero():
    """b = z = x = h = y = 1, input 0 and bias 0: the hidden pre-activation is exactly 0."""
    one = np.ones
    return dict(I0=np.zeros((1, 1)), ID0=one((1, 1, 1)), W1=one((1, 1)), c1=np.zeros(1),
                W2=one((1, 1)), c2=one(1), DO=one((1, 1)), DOD=one((1, 1, 1)))


def test_one_sided_truths_differ_at_a_hidden_kink_and_bracket_the_document():
    point = {k: jnp.asarray(v) for k, v in _point_with_a_hidden_zero().items()}
    left, right = truths.network_gradients_left(**point), truths.network_gradients_right(**point)
    document = closed_forms.network_double_backprop(**point)
    # sigma''(0) is +2 from the left and -2 from the right: the bias gradient sees it.
    assert float(left["c1"][0]) != float(right["c1"][0])
    np.testing.assert_allclose(document["c1"], right["c1"])  # the x >= 0 branch at 0


def test_a_value_outside_the_one_sided_derivatives_fails(monkeypatch):
    original = closed_forms.softsign_second_derivative
    monkeypatch.setattr(closed_forms, "softsign_second_derivative",
                        lambda x: jnp.where(x == 0, 5.0, original(x)).astype(x.dtype))
    # A new function object, so the checker is compiled for the patched rule.
    patched = dataclasses.replace(NETWORK, closed_form=lambda *a: closed_forms.network_double_backprop(*a))
    result = derivcheck.verify(patched, dtype="float64")
    assert result.verdict == derivcheck.Verdict.FAILED
    assert result.counterexample["output"] in {"c1", "W1", "I0", "W2", "c2", "ID0"}
