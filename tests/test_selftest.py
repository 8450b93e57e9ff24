"""The mutation self-test: faults planted in every claim's closed form are caught.

Each claim that is not an erratum gets every applicable mutant of derivcheck.mutants, in
float32 and float64, and in bfloat16 for a selection (derivcheck selftest runs the same,
claim by claim). An equivalent mutant (it computes the original's values) must pass
instead; the kill rates are printed at the end of the test session.
"""

import dataclasses
import json
import re

import jax.numpy as jnp
import numpy as np
import pytest

import derivcheck
from derivcheck._checker import Checker, _closed_form_stage
from derivcheck._composed import Composed
from derivcheck._output import selftest_table
from derivcheck._selftest import MutantRecord, mutants_of, selftest_claim
from derivcheck.cli import main
from derivcheck.inputs import BatchPlan, draw_batch
from derivcheck.mutants import (
    ONE_ELEMENT_ULPS,
    extra_transpose,
    first_term_only,
    one_branch_negated,
    one_over_n,
    swapped_arguments,
    wrong_reduction_axis,
)

# The dtypes every mutant must be caught in.
GATE_DTYPES = ("float32", "float64")
#: Claims whose mutants are also caught in bfloat16 here: one of each kind the narrow model
#: treats apart (an elementwise second derivative, a softmax Jacobian, matrix products,
#: recursions through layers, whole networks), from every document. The whole catalog's
#: bfloat16 self-test is `derivcheck selftest --dtype bfloat16` (README, "Mutation
#: self-test"): 3 minutes on two cores, more than this suite can add to CI. float16 is not
#: gated yet (tests/test_catalog.py).
NARROW_SELFTEST = frozenset({
    "sharma2024/eq9-softmax-jacobian-matrix", "sharma2024/sec2-network-backprop",
    "challa2022/eq17-last-layer-delta", "challa2022/general-recursion-network",
    "vijay2019/sec1.1-softsign-second-derivative-negative", "vijay2019/sec2.2-linear-weight-gradient-matrix",
    "mnist_notes/delta-recursion-matrix-form-corrected",
    "dey/eq13-delta-recursion", "dey/summary-network-gradients", "dey/bias-trick-augmented-weight-gradient",
})

CLAIMS = [c for c in derivcheck.catalog() if not c.printed_wrong]


def test_the_narrow_selection_names_catalog_claims():
    assert NARROW_SELFTEST <= {c.id for c in CLAIMS}


@pytest.mark.parametrize("claim", CLAIMS, ids=lambda c: c.id)
def test_every_mutant_is_killed_or_equivalent(claim, record_property):
    dtypes = (*GATE_DTYPES, "bfloat16") if claim.id in NARROW_SELFTEST else GATE_DTYPES
    records = selftest_claim(claim, dtypes)
    record_property("mutants", json.dumps([dataclasses.asdict(r) for r in records]))
    assert {r.operator for r in records} >= {"sign flip", "factor of 2"}
    bad = [f"{r.operator} [{r.dtype}]: {r.status}, {r.detail}" for r in records if not r.ok]
    assert not bad, f"{claim.id}: " + "; ".join(bad)


_KILLED_ELSEWHERE = re.compile(r"this mutant killed, in (\S+)$")


def _killed_elsewhere():
    """(claim, operator, the claim that is said to kill it) for every symmetry that says so."""
    return [(c.id, op, m.group(1)) for c in CLAIMS for op, why in c.symmetries
            if (m := _KILLED_ELSEWHERE.search(why))]


@pytest.mark.parametrize(("claim_id", "operator", "killer_id"), sorted(set(_killed_elsewhere())))
def test_a_symmetry_said_to_be_checked_elsewhere_is_killed_there(claim_id, operator, killer_id):
    # A symmetry of the inputs chosen (softmax's symmetric H') excuses an equivalent mutant
    # only where a claim stated in general kills the same mutant.
    (killer,) = (c for c in CLAIMS if c.id == killer_id)
    records = selftest_claim(killer, GATE_DTYPES, operators=[operator])
    assert records and all(r.status == "killed" for r in records), (claim_id, records)


def _square_sum(x):
    return jnp.sum(x * x, axis=0)


def _relu_derivative(x):
    return jnp.where(x > 0, 1.0, 0.0).astype(x.dtype)


@pytest.mark.parametrize(
    ("operator", "fn", "args", "changed"),
    [(wrong_reduction_axis, _square_sum, (np.arange(9.0).reshape(3, 3),), True),
     (first_term_only, _square_sum, (np.arange(9.0).reshape(3, 3),), True),
     (one_branch_negated, _relu_derivative, (np.array([-1.0, 2.0]),), True),
     (swapped_arguments, lambda a, b: a - b, (np.ones(2), np.zeros(2)), True),
     (extra_transpose, lambda a: a, (np.arange(4.0).reshape(2, 2),), True),
     (one_over_n, lambda a: a, (np.ones(3),), True)],
)
def test_each_operator_changes_what_it_applies_to(operator, fn, args, changed):
    mutant = operator(fn, args)
    assert mutant is not None
    assert (not np.allclose(mutant(*args), fn(*args))) == changed


@pytest.mark.parametrize(
    ("operator", "fn", "args"),
    [(wrong_reduction_axis, lambda a: jnp.sum(a), (np.ones(3),)),
     (swapped_arguments, lambda a, b: a @ b, (np.ones((2, 3)), np.ones(3))),
     (extra_transpose, lambda a: a, (np.ones(3),)),
     (one_over_n, lambda a: a, (np.ones(1),)),
     (one_branch_negated, lambda a: 2 * a, (np.ones(2),))],
)
def test_an_operator_that_does_not_apply_makes_no_mutant(operator, fn, args):
    assert operator(fn, args) is None


def test_selftest_command_prints_kill_rates(capsys):
    assert main(["selftest", "--claim", "sharma2024/eq3-*", "--dtype", "float64", "--format", "json",
                 "--jobs", "1"]) == 0
    payload = json.loads(capsys.readouterr().out)
    per_operator = {row["group"]: row for row in payload["per_operator"]}
    assert per_operator["sign flip"] == {"group": "sign flip", "killed": 1, "counted": 1, "equivalent": 0}
    assert all(m["status"] == "killed" for m in payload["mutants"])


def test_a_surviving_mutant_fails_the_self_test():
    records = [MutantRecord("x/claim", "sign flip", "float32", "killed", "fails at 128 of 128 points"),
               MutantRecord("x/claim", "factor of 2", "float32", "SURVIVED", "holds at all 128 points")]
    table = selftest_table(records)
    assert "SURVIVED: x/claim [float32] factor of 2" in table and table.endswith("Self-test FAILED.")


@pytest.mark.parametrize("argv", [["selftest", "--operator", "typo"],
                                  ["selftest", "--claim", "sharma2024/eq35-relu-backprop"]])
def test_selftest_usage_errors_exit_2(argv, capsys):
    assert main(argv) == 2
    assert capsys.readouterr().err.startswith("derivcheck: error:")


#: Output and argument operators: their mutants are compiled in two parts (derivcheck._composed).
COMPOSED_OPERATORS = ("sign flip", "factor of 2", "factor of 1/N", f"one element off by {ONE_ELEMENT_ULPS} ulps",
                      "extra transpose", "swapped arguments")


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("claim_id", ["sharma2024/eq9-softmax-jacobian-matrix", "sharma2024/sec2-network-backprop",
                                      "vijay2019/sec1.1-softsign-second-derivative-negative"])
def test_a_fault_compiled_in_two_parts_is_bounded_as_in_one(claim_id, dtype):
    # The base's outputs stage and the change's stage give the values and bounds, bit for
    # bit, of the same mutant traced and bounded in one piece.
    (claim,) = (c for c in CLAIMS if c.id == claim_id)
    narrow = Checker(claim.closed_form, claim.reference, None, (), dtype, "cpu").narrow
    mutants = mutants_of(claim, COMPOSED_OPERATORS)
    assert {name for name, _ in mutants} >= {"sign flip", "factor of 2", f"one element off by {ONE_ELEMENT_ULPS} ulps"}
    for name, mutated in mutants:
        assert isinstance(mutated.closed_form, Composed), name
        arrays = draw_batch(mutated.domain, BatchPlan(0, "unit", seed=0), points=16, dtype=jnp.dtype(dtype))
        batch = tuple(jnp.asarray(a, dtype) for a in arrays)
        in_two = _closed_form_stage(mutated.closed_form, "cpu", "highest", narrow)(*batch)
        in_one = _closed_form_stage(lambda *a, m=mutated.closed_form: m(*a), "cpu", "highest", narrow)(*batch)
        for two, one in zip(in_two, in_one):
            np.testing.assert_array_equal(np.asarray(two), np.asarray(one), err_msg=f"{claim_id} {name} [{dtype}]")
