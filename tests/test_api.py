"""The Python API: verify() on catalog claims and on claims replaced by the user."""

import dataclasses

import jax.numpy as jnp
import numpy as np
import pytest

import derivcheck
from derivcheck._checker import ClaimError
from derivcheck.inputs import REGIMES, BatchPlan, draw_batch

(SIGMOID,) = derivcheck.select(pattern="sharma2024/eq1-sigmoid-derivative")
(RELU,) = derivcheck.select(pattern="sharma2024/eq3-relu-derivative")
_WRONG_SIGMOID = dataclasses.replace(SIGMOID, closed_form=lambda x: jnp.exp(-x) / (1 + jnp.exp(-x)))


def test_replaced_closed_form_is_caught_with_a_minimal_counterexample():
    result = derivcheck.verify(_WRONG_SIGMOID, dtype="float64")
    assert result.verdict == derivcheck.Verdict.FAILED and not result.passed
    ce = result.counterexample
    assert ce["shrunk"] and ce["dims"] == {"n": 1}
    assert ce["abs_error"] > ce["tolerance"]


def test_non_finite_closed_form_is_a_failure_never_a_pass():
    def nan_at_zero(x):
        return jnp.where(x > 0, 1.0, jnp.where(x == 0, jnp.nan, 0.0)).astype(x.dtype)

    result = derivcheck.verify(dataclasses.replace(RELU, closed_form=nan_at_zero), dtype="float32", examples=0)
    assert result.verdict == derivcheck.Verdict.FAILED
    ce = result.counterexample
    assert ce["inputs"]["x"] == [0.0] and ce["closed_form"] != ce["closed_form"]  # NaN, reported


def _relu_derivative_valued_at_zero(value):
    def closed_form(x):
        return jnp.where(x > 0, 1.0, jnp.where(x == 0, value, 0.0)).astype(x.dtype)

    return dataclasses.replace(RELU, closed_form=closed_form)


def test_kink_value_between_one_sided_derivatives_passes():
    assert derivcheck.verify(_relu_derivative_valued_at_zero(0.5), dtype="float64", examples=0).passed
    assert not derivcheck.verify(_relu_derivative_valued_at_zero(2.0), dtype="float64", examples=0).passed


@pytest.mark.parametrize(
    ("closed_form", "message"),
    [
        (lambda x: jnp.sum(x), "shape"),
        (lambda x: x.astype(jnp.float64), r"returns float64 for float32 inputs \(output output\); cast with"),
        (lambda x: x.undefined_attribute, "closed form raised"),
    ],
)
def test_unusable_closed_form_is_one_clear_error(closed_form, message):
    with pytest.raises(ClaimError, match=message):
        derivcheck.verify(dataclasses.replace(SIGMOID, closed_form=closed_form), dtype="float32")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"dtype": "float8_e4m3fn"}, "dtype"), ({"profile": "fast"}, "profile"),
     ({"device": "abacus"}, "device"), ({"examples": -1}, "examples"), ({"device": "cpu:99"}, "cpu:99"),
     ({"precision": "fastest"}, "precision")],
)
def test_bad_arguments_raise_invalid_argument(kwargs, message):
    with pytest.raises(derivcheck.InvalidArgument, match=message):
        derivcheck.verify(SIGMOID, **kwargs)


def _what_was_found(result) -> tuple:
    # The sigmoid's float32 rounding makes every error depend on the exact inputs drawn.
    return (result.points, result.max_abs_error, result.max_rel_error, result.ratio_histogram, result.verdict)


def test_same_seed_same_result():
    a, b = (derivcheck.verify(SIGMOID, dtype="float32", profile="dev", seed=11) for _ in range(2))
    assert a.max_abs_error > 0  # real rounding, not an exact formula whose error is 0 whatever is drawn
    assert _what_was_found(a) == _what_was_found(b)
    wrong_a, wrong_b = (derivcheck.verify(_WRONG_SIGMOID, dtype="float32", profile="dev", seed=11) for _ in range(2))
    assert wrong_a.counterexample == wrong_b.counterexample and _what_was_found(wrong_a) == _what_was_found(wrong_b)


def test_another_seed_draws_other_inputs_and_finds_other_errors():
    a = derivcheck.verify(SIGMOID, dtype="float32", profile="dev", seed=11)
    b = derivcheck.verify(SIGMOID, dtype="float32", profile="dev", seed=12)
    assert a.max_abs_error != b.max_abs_error or a.ratio_histogram != b.ratio_histogram
    plan = BatchPlan(bucket=1, regime=REGIMES[0], seed=0)
    first, second = (draw_batch(SIGMOID.domain, plan, points=64, dtype=np.float32, seed=s) for s in (11, 12))
    assert not np.array_equal(first[0], second[0])


def test_result_records_where_it_ran():
    result = derivcheck.verify(RELU, dtype="float64", examples=0)
    assert result.device.startswith("cpu") and result.jax_version
    assert result.to_json()["passed"] is True


def test_overflowing_closed_form_fails_rather_than_going_undecided():
    # Exact wherever it is finite; in float32, exp(-x) overflows for x < -88 and 0 * inf is
    # NaN, with an unbounded error bound. The reference is finite there: a failure, never
    # an undecided point (which would let the claim pass).
    def nan_on_overflow(x):
        s = 1 / (1 + jnp.exp(-x))
        return s * (1 - s) + 0.0 * jnp.exp(-x)

    result = derivcheck.verify(dataclasses.replace(SIGMOID, closed_form=nan_on_overflow), dtype="float32")
    assert result.verdict == derivcheck.Verdict.FAILED
    assert result.undecided == 0
    ce = result.counterexample
    assert ce["closed_form"] != ce["closed_form"] and ce["inputs"]["x"][0] < -88  # NaN


@pytest.mark.parametrize("exponent", [1.0, 2.0, 3.0])
def test_growth_exponent_recovers_a_power_law(exponent):
    from derivcheck._bench import growth_exponent

    sizes = [8, 64, 512, 4096]
    # A fixed cost that dominates the smallest size only: the fit uses the largest three.
    seconds = [1e-6 + 1e-6 * n**exponent for n in sizes]
    assert growth_exponent(sizes, seconds) == pytest.approx(exponent, abs=0.05)


def test_reference_that_raises_is_one_clear_error():
    def broken(x):
        raise RuntimeError("no truth here")

    with pytest.raises(ClaimError, match="reference raised RuntimeError: no truth here"):
        derivcheck.verify(dataclasses.replace(SIGMOID, reference=broken), dtype="float64", examples=0)


def test_non_finite_reference_is_never_a_pass():
    infinite = dataclasses.replace(SIGMOID, reference=lambda x: jnp.full_like(x, jnp.inf))
    result = derivcheck.verify(infinite, dtype="float64", examples=0)
    assert not result.passed and result.points == 0 and "non-finite" in result.detail
