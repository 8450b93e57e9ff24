"""Faults planted in every claim's closed form are caught, in both dtypes.

Errata are not mutated: a fault planted in a formula already known to be wrong cannot be
told apart from the erratum; their corrections are covered like every claim that holds.
A dropped transpose of a symmetric matrix (softmax's Jacobian, Dey §3.2) is an equivalent
mutant: it is recognised by computing the same values, and must then pass, not fail.
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import derivcheck
from derivcheck.inputs import BatchPlan, draw_batch
from derivcheck.mutants import MUTANTS, count_droppable_transposes
from derivcheck.tolerance import SUPPORTED_DTYPES

CLAIMS = [c for c in derivcheck.catalog() if c.expected != "erratum"]


def _square(domain: derivcheck.Domain) -> derivcheck.Domain:
    """Every dimension of size 3, so a transposed matrix keeps its shape."""
    return dataclasses.replace(domain, dims=tuple((name, (3,)) for name, _ in domain.dims))


def _one_bucket(domain: derivcheck.Domain) -> derivcheck.Domain:
    """One shape bucket, one compilation per mutant: each dimension at its middle size
    (never the degenerate 1 alone, where a transposed or perturbed output can coincide)."""
    middle = tuple((name, (sorted(sizes)[len(sizes) // 2],)) for name, sizes in domain.dims)
    return dataclasses.replace(domain, dims=middle)


def _mutated(claim: derivcheck.Claim, mutant_name: str) -> derivcheck.Claim:
    mutant = MUTANTS[mutant_name](claim.closed_form)
    shapes = _square if mutant_name == "dropped transpose" else _one_bucket
    return dataclasses.replace(claim, closed_form=mutant, domain=shapes(claim.domain))


def _has_droppable_transpose(claim: derivcheck.Claim) -> bool:
    domain = _square(claim.domain)
    dims = domain.buckets[0]
    args = [jax.ShapeDtypeStruct(domain.shape_of(a, dims), "float64") for a in domain.args]
    return count_droppable_transposes(claim.closed_form, *args) > 0


CASES = [
    pytest.param(claim, name, id=f"{claim.id}-{name.replace(' ', '_')}")
    for claim in CLAIMS
    for name in MUTANTS
    if name != "dropped transpose" or _has_droppable_transpose(claim)
]


def _equivalent(original: derivcheck.Claim, mutated: derivcheck.Claim) -> bool:
    """Whether the mutant computes the same function on the checked points (in float64):
    e.g. a dropped transpose of a symmetric matrix, such as softmax's Jacobian."""
    arrays = draw_batch(mutated.domain, BatchPlan(0, "unit", seed=0), points=128, dtype=np.float64)
    same = jax.vmap(lambda *a: jax.tree_util.tree_map(
        lambda x, y: jnp.allclose(x, y, rtol=1e-12, atol=1e-300), original.closed_form(*a), mutated.closed_form(*a)))
    return all(bool(jnp.all(leaf)) for leaf in jax.tree_util.tree_leaves(same(*arrays)))


@pytest.mark.parametrize("dtype", SUPPORTED_DTYPES)
@pytest.mark.parametrize(("claim", "mutant_name"), CASES)
def test_planted_fault_is_caught(claim, mutant_name, dtype):
    mutated = _mutated(claim, mutant_name)
    # One fixed batch of 128 points (no generated ones, no shrinking): enough to show it caught.
    result = derivcheck.verify(mutated, dtype=dtype, examples=0, shrink=False)
    if mutant_name == "dropped transpose" and _equivalent(claim, mutated):
        # An equivalent mutant is not a kill: it must pass, like the claim itself.
        assert result.passed, f"equivalent mutant of {claim.id} failed: {result.detail}"
        return
    # A mutant that fails inside its claim's domain fails the claim, conditional or not.
    assert not result.passed, f"{mutant_name} in {claim.id} went unnoticed: {result.detail}"
    assert result.verdict == derivcheck.Verdict.FAILED


def test_dropped_transpose_applies_where_a_formula_transposes_a_square_matrix():
    ids = {c.id for c in CLAIMS if _has_droppable_transpose(c)}
    assert "sharma2024/eq46-softmax-backprop-masked" in ids  # M^T
    assert "sharma2024/eq17-linear-input-gradient" in ids  # W^T
