"""Faults planted in every claim's closed form are caught, in both dtypes.

Errata are not mutated: a fault planted in a formula already known to be wrong cannot be
told apart from the erratum; their corrections are covered like every claim that holds.
"""

import dataclasses

import jax
import pytest

import derivcheck
from derivcheck.mutants import MUTANTS, count_droppable_transposes
from derivcheck.tolerance import SUPPORTED_DTYPES

CLAIMS = [c for c in derivcheck.catalog() if c.expected != "erratum"]


def _square(domain: derivcheck.Domain) -> derivcheck.Domain:
    """Every dimension of size 3, so a transposed matrix keeps its shape."""
    return dataclasses.replace(domain, dims=tuple((name, (3,)) for name, _ in domain.dims))


def _largest_bucket(domain: derivcheck.Domain) -> derivcheck.Domain:
    """One shape bucket (one compilation per mutant): each dimension at its largest size."""
    return dataclasses.replace(domain, dims=tuple((name, (max(sizes),)) for name, sizes in domain.dims))


def _mutated(claim: derivcheck.Claim, mutant_name: str) -> derivcheck.Claim:
    mutant = MUTANTS[mutant_name](claim.closed_form)
    shapes = _square if mutant_name == "dropped transpose" else _largest_bucket
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


@pytest.mark.parametrize("dtype", SUPPORTED_DTYPES)
@pytest.mark.parametrize(("claim", "mutant_name"), CASES)
def test_planted_fault_is_caught(claim, mutant_name, dtype):
    # A mutant that fails inside its claim's domain fails the claim, conditional or not.
    result = derivcheck.verify(_mutated(claim, mutant_name), dtype=dtype, examples=1, shrink=False)
    assert not result.passed, f"{mutant_name} in {claim.id} went unnoticed: {result.detail}"
    assert result.verdict == derivcheck.Verdict.FAILED


def test_dropped_transpose_applies_where_a_formula_transposes_a_square_matrix():
    ids = {c.id for c in CLAIMS if _has_droppable_transpose(c)}
    assert "sharma2024/eq46-softmax-backprop-masked" in ids  # M^T
    assert "sharma2024/eq17-linear-input-gradient" in ids  # W^T
