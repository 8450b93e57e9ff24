"""Update rules: a small step by each document's printed rule lowers the loss.

Every update claim is also checked against the autodiff step in the catalog; here the
property the rules exist for: with a small enough step, the loss goes down.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import derivations.challa2022 as challa
import derivations.dey as dey
import derivations.mnist_notes as notes
import reference.challa2022 as challa_truth
import reference.dey as dey_truth
import reference.mnist_notes as notes_truth

REAL = st.floats(-3, 3, allow_subnormal=False)
EPS = float(np.finfo(np.float64).eps)
_jit = functools.cache(jax.jit)  # one compilation per rule and shape, not one eager run per op


def _not_above(after: float, before: float) -> bool:
    """after <= before, up to the rounding of evaluating the loss itself (a few ulps)."""
    return after <= before + 8 * EPS * abs(before)


def _array(draw, shape, elements=REAL):
    return jnp.asarray(draw(hnp.arrays(np.float64, shape, elements=elements)))


def _one_hot(draw, n):
    return jnp.eye(n)[draw(st.integers(0, n - 1))]


def _dey(draw):
    a0, W1, b1, W2, b2 = (_array(draw, s) for s in ((3, 1), (4, 3), (4, 1), (2, 4), (2, 1)))
    y = _one_hot(draw, 2)[:, None]
    params = {"W1": W1, "b1": b1, "W2": W2, "b2": b2}
    return params, lambda eta: _jit(dey.gradient_descent_step)(a0, W1, b1, W2, b2, y, eta), \
        lambda p: float(_jit(dey_truth._network_cost)(p, a0, y))


def _challa(draw):
    x1, W2, b2, W3, b3, W4, b4 = (_array(draw, s) for s in ((3,), (3, 4), (4,), (4, 3), (3,), (3, 2), (2,)))
    y_hat = _one_hot(draw, 2)
    params = {"W2": W2, "b2": b2, "W3": W3, "b3": b3, "W4": W4, "b4": b4}
    return params, lambda eta: _jit(challa.update_step)(x1, W2, b2, W3, b3, W4, b4, y_hat, eta), \
        lambda p: float(challa_truth._network_loss(p, x1, y_hat, side=-1))


def _notes_batch(draw):
    X = _array(draw, (3, 3))
    W1, B1, W2, B2 = (_array(draw, s) for s in ((3, 4), (4,), (4, 2), (2,)))
    Y = jnp.stack([_one_hot(draw, 2) for _ in range(3)])
    params = {"W1": W1, "B1": B1, "W2": W2, "B2": B2}

    def total(p):
        return float(jnp.sum(jax.vmap(notes_truth._loss, in_axes=(None, 0, 0))(p, X, Y)))

    return params, lambda alpha: _jit(notes.batch_gradient_descent_step)(X, W1, B1, W2, B2, Y, alpha), total


def _notes_single(draw):
    x = _array(draw, (3,))
    W1, B1, W2, B2 = (_array(draw, s) for s in ((3, 4), (4,), (4, 2), (2,)))
    y = _one_hot(draw, 2)
    params = {"W1": W1, "B1": B1, "W2": W2, "B2": B2}
    return params, lambda alpha: _jit(notes.gradient_descent_step)(x, W1, B1, W2, B2, y, alpha), \
        lambda p: float(_jit(notes_truth._loss)(p, x, y))


RULES = {
    "dey/eq14-gradient-descent-step": _dey,
    "challa2022/update-step": _challa,
    "mnist_notes/gradient-descent-step": _notes_single,
    "mnist_notes/batch-gradient-descent-step": _notes_batch,
}


@pytest.mark.parametrize("rule", RULES)
@given(data=st.data())
def test_a_small_step_lowers_the_loss(rule, data):
    params, step, loss = RULES[rule](data.draw)
    # A step small enough for first-order decrease, judged from the step itself.
    probe = step(1.0)
    size = np.sqrt(sum(float(jnp.sum((probe[k] - params[k]) ** 2)) for k in params))
    after = step(1e-3 / (1.0 + size))
    assert _not_above(loss(after), loss(params))


@given(data=st.data(), M=st.integers(1, 4))
def test_a_small_minibatch_step_lowers_the_mean_cost(data, M):
    W1, b1, W2, b2 = (_array(data.draw, s) for s in ((4, 3), (4, 1), (2, 4), (2, 1)))
    A0 = jnp.stack([_array(data.draw, (3, 1)) for _ in range(M)])
    Y = jnp.stack([_one_hot(data.draw, 2)[:, None] for _ in range(M)])
    before = {"W1": W1, "b1": b1, "W2": W2, "b2": b2}

    def mean_cost(p):
        return float(np.mean([_jit(dey_truth._network_cost)(p, a0, y) for a0, y in zip(A0, Y)]))

    probe = _jit(dey.minibatch_step)(A0, W1, b1, W2, b2, Y, 1.0)
    size = np.sqrt(sum(float(jnp.sum((probe[k] - before[k]) ** 2)) for k in before))
    after = _jit(dey.minibatch_step)(A0, W1, b1, W2, b2, Y, 1e-3 / (1.0 + size))
    assert _not_above(mean_cost(after), mean_cost(before))
