"""Update rules: a small step by the printed rule lowers the cost (Dey, Eqs. (14)-(15))."""

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import derivations.dey as dey
import reference.dey as truth

SIZES = (3, 4, 2)  # input, hidden, output widths


def _params(draw):
    n0, n1, n2 = SIZES
    real = st.floats(-3, 3, allow_subnormal=False)
    arrays = [draw(hnp.arrays(np.float64, shape, elements=real))
              for shape in ((n0, 1), (n1, n0), (n1, 1), (n2, n1), (n2, 1))]
    weights = draw(hnp.arrays(np.float64, (n2, 1), elements=st.floats(0.05, 1.0)))
    return [jnp.asarray(a) for a in arrays], jnp.asarray(weights / weights.sum())


def _cost(params, a0, y):
    return float(truth._network_cost(params, a0, y))


def _small(grads) -> float:
    """A step small enough for first-order decrease: 1e-3 over the gradient's size."""
    norm = np.sqrt(sum(float(jnp.sum(g**2)) for g in jax.tree_util.tree_leaves(grads)))
    return 1e-3 / (1.0 + norm)


@given(st.data())
def test_a_small_gradient_descent_step_lowers_the_cost(data):
    (a0, W1, b1, W2, b2), y = _params(data.draw)
    before = {"W1": W1, "b1": b1, "W2": W2, "b2": b2}
    eta = _small(dey.summary_gradients(a0, W1, b1, W2, b2, y))
    after = dey.gradient_descent_step(a0, W1, b1, W2, b2, y, eta)
    assert _cost(after, a0, y) <= _cost(before, a0, y)


@given(st.data(), st.integers(1, 4))
def test_a_small_minibatch_step_lowers_the_mean_cost(data, M):
    (_, W1, b1, W2, b2), _ = _params(data.draw)
    samples = [_params(data.draw) for _ in range(M)]
    A0 = jnp.stack([s[0][0] for s in samples])
    Y = jnp.stack([s[1] for s in samples])
    before = {"W1": W1, "b1": b1, "W2": W2, "b2": b2}

    def mean_cost(p):
        return float(np.mean([_cost(p, a0, y) for a0, y in zip(A0, Y)]))

    eta = 1e-3 / (1.0 + float(np.abs(np.asarray(W1)).sum()))
    after = dey.minibatch_step(A0, W1, b1, W2, b2, Y, eta)
    assert mean_cost(after) <= mean_cost(before)
