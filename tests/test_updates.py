"""Update rules: a small step by each document's printed rule lowers the loss.

Every update claim is also checked against the autodiff step in the catalog; here the
property the rules exist for, declared on the claim (``Claim.descent``): with a small
enough step, the loss goes down.
"""

import functools

import jax
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import derivcheck
from derivcheck.inputs import point_strategy

UPDATE_RULES = [c for c in derivcheck.catalog() if c.descent is not None]
EPS = float(np.finfo(np.float64).eps)
_jit = functools.cache(jax.jit)  # one compilation per rule and shape, not one eager run per op


def _not_above(after: float, before: float) -> bool:
    """after <= before, up to the rounding of evaluating the loss itself (a few ulps)."""
    return after <= before + 8 * EPS * abs(before)


def test_every_document_with_an_update_rule_declares_its_descent():
    assert {c.document.key for c in UPDATE_RULES} == {"challa2022", "mnist_notes", "dey"}


@pytest.mark.parametrize("claim", UPDATE_RULES, ids=lambda c: c.id)
@given(data=st.data())
def test_a_small_step_lowers_the_loss(claim, data):
    domain, descent = claim.domain, claim.descent
    bucket = data.draw(st.integers(0, len(domain.buckets) - 1), label="bucket")
    point = data.draw(point_strategy(domain, dtype=np.float64, bucket=bucket), label="point")
    args = dict(zip((a.name for a in domain.args), point))
    loss = _jit(descent.loss)
    step = _jit(claim.closed_form)

    def after(size: float) -> dict:
        return step(**{**args, descent.step: np.float64(size)})

    # A step small enough for first-order decrease, judged from the step itself.
    probe = after(1.0)
    length = np.sqrt(sum(float(np.sum((np.asarray(probe[k]) - args[k]) ** 2)) for k in probe))
    stepped = {**args, **after(1e-3 / (1.0 + length))}
    assert _not_above(float(loss(**stepped)), float(loss(**args)))
