"""The public API for users' own derivatives: check, check_custom_vjp/jvp, derivcheck.testing."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import strategies as st

import derivcheck
from derivcheck import ClaimError, InvalidArgument
from derivcheck.testing import DerivativeMismatch, assert_derivative

README = Path(__file__).resolve().parents[1] / "README.md"


def _section(title: str) -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index(f"## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end]


def test_readme_examples_run():
    """Every python block of "Checking your own derivatives", in order, as one script; then
    the test functions it defines; and the failure message it shows is the one printed."""
    section = _section("Checking your own derivatives")
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert len(blocks) >= 5
    namespace: dict = {"__name__": "readme_example"}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        for block in blocks:
            exec(compile(block, str(README), "exec"), namespace)
    tests = [fn for name, fn in namespace.items() if name.startswith("test_") and callable(fn)]
    assert tests
    for test in tests:
        test()
    shown = section.split("\nprints\n\n```\n", 1)[1].split("```", 1)[0]
    for line in shown.splitlines():
        if "replay:" not in line and "..." not in line:
            assert line in out.getvalue(), f"README shows a line the example does not print: {line}"


def _holds(result) -> bool:
    """Verified, and on real numbers: a check that decided no point proves nothing."""
    return result.verdict == derivcheck.Verdict.VERIFIED and result.points > 0 and not result.vacuous


def _leaky_relu(x):
    return jnp.where(x > 0, x, 0.01 * x)


def _sum_squared(x):
    return 0.5 * jnp.sum(x) ** 2


def _twice(x):
    return jnp.stack([x, 2 * x])


def test_host_closed_form_that_mixes_points_goes_point_by_point():
    # Correct for one point, wrong on a batch (it sums over every point): detected, not trusted.
    def grad(x):
        return np.full_like(x, x.sum())

    result = derivcheck.check(grad, _sum_squared, derivative="gradient", inputs={"x": (4,)}, dtype="float32")
    assert _holds(result) and result.closed_form_path == "host, point by point"


def test_jax_closed_form_takes_the_compiled_path():
    result = derivcheck.check(lambda x: jnp.full_like(x, jnp.sum(x)), _sum_squared, derivative="gradient",
                              inputs={"x": (4,)})
    assert _holds(result) and result.closed_form_path == "jit"


def test_wrong_host_derivative_is_caught_with_a_minimal_counterexample():
    def grad(x):  # forgets the sum: x instead of sum(x)
        return x.copy()

    result = derivcheck.check(grad, _sum_squared, derivative="gradient", inputs={"x": (3,)}, dtype="float64")
    assert result.verdict == derivcheck.Verdict.FAILED
    ce = result.counterexample
    assert ce["shrunk"] and ce["abs_error"] > ce["tolerance"]
    assert sum(v != 0 for v in ce["inputs"]["x"]) == 1  # one nonzero element already shows it


def test_non_finite_closed_form_output_is_a_failure_that_says_nan():
    def grad(x):
        return np.where(x == 0, np.nan, np.where(x > 0, 1.0, 0.01)).astype(x.dtype)

    with pytest.raises(DerivativeMismatch, match=r"closed form nan"):
        assert_derivative(grad, _leaky_relu, derivative="derivative", inputs={"x": (2,)}, kinks=[0.0],
                          dtypes=("float32",))


def test_assertion_names_output_tolerance_input_and_pytest_replay():
    @jax.custom_jvp
    def square(x):
        return x * x

    @square.defjvp
    def _(primals, tangents):
        (x,), (t,) = primals, tangents
        return square(x), x * t  # wrong: 2 x t

    with pytest.raises(DerivativeMismatch) as caught:
        derivcheck.testing.assert_custom_jvp(square, inputs={"x": (2,)}, dtypes=("float64",))
    message = str(caught.value)
    assert "checked: custom_jvp rule of square w.r.t. x" in message
    assert re.search(r"worst at output jvp\[\d\]: closed form .* > tolerance", message)
    assert '"tangent": [' in message
    assert "python -m pytest 'tests/test_check.py::test_assertion_names_output_tolerance_input_and_pytest_replay'" \
        in message


def test_strategy_inputs_are_shrunk_and_kinks_added():
    def grad(x):  # right everywhere but at the kink
        return jnp.where(x > 0, 1.0, jnp.where(x < 0, 0.01, 2.0)).astype(x.dtype)

    points = st.fixed_dictionaries({"x": st.floats(1.0, 5.0).map(lambda v: np.full((2,), v))})
    result = derivcheck.check(grad, _leaky_relu, derivative="derivative", inputs=points, kinks=[0.0])
    assert not result.passed and result.counterexample["inputs"] == {"x": [0.0, 0.0]}


# Each derivative of tanh by hand, and the same with the square of tanh' dropped.
TANH_DERIVATIVES = {
    "jacobian": (lambda z: jnp.diag(1 - jnp.tanh(z) ** 2), lambda z: jnp.diag(1 - jnp.tanh(z))),
    "vjp": (lambda z, c: c * (1 - jnp.tanh(z) ** 2), lambda z, c: c * (1 - jnp.tanh(z))),
    "jvp": (lambda z, t: (1 - jnp.tanh(z) ** 2) * t, lambda z, t: (1 - jnp.tanh(z)) * t),
    "second_derivative": (lambda z: -2 * jnp.tanh(z) * (1 - jnp.tanh(z) ** 2),
                          lambda z: -2 * jnp.tanh(z) * (1 - jnp.tanh(z))),
}


@pytest.mark.parametrize("derivative", sorted(TANH_DERIVATIVES))
def test_derivative_vocabulary_against_tanh(derivative):
    right, wrong = TANH_DERIVATIVES[derivative]
    options = dict(derivative=derivative, inputs={"z": (3,)}, dtype="float32")
    assert _holds(derivcheck.check(right, jnp.tanh, **options))
    assert not derivcheck.check(wrong, jnp.tanh, **options).passed


def test_hvp_of_a_two_argument_loss():
    def f(w, x):
        return jnp.sum(w**2 * x)

    assert _holds(derivcheck.check(lambda w, x, v: 2 * x * v, f, derivative="hvp", inputs={"w": (3,), "x": (3,)}))
    assert not derivcheck.check(lambda w, x, v: x * v, f, derivative="hvp", inputs={"w": (3,), "x": (3,)}).passed


def _raises(exc):
    def raising(*args):
        raise exc

    return raising


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: derivcheck.check(np.sign, _leaky_relu, derivative="curl", inputs={"x": ()}),
         InvalidArgument, "unknown derivative 'curl'"),
        (lambda: derivcheck.check(np.sign, _leaky_relu, derivative="derivative", inputs=[3]),
         InvalidArgument, "inputs must be a mapping"),
        (lambda: derivcheck.check(np.sign, _leaky_relu, derivative="derivative", inputs={"x": 3}),
         InvalidArgument, "input 'x': expected a declaration"),
        (lambda: derivcheck.check(np.sign, _leaky_relu, derivative="derivative", inputs={"x": derivcheck.real(
            shape=(0,))}), InvalidArgument, "shape must be a tuple of positive ints"),
        (lambda: derivcheck.check(np.sign, _leaky_relu, derivative="derivative", inputs={"x": ()}, wrt="y"),
         InvalidArgument, "wrt 'y' must name inputs among x"),
        (lambda: derivcheck.check(np.sign, _leaky_relu, derivative="derivative", inputs={"x": ()}, kinks={"y": [0]}),
         InvalidArgument, "kinks given for 'y'"),
        (lambda: derivcheck.check(np.sign, _leaky_relu, derivative="gradient", inputs={"x": (3,)}),
         InvalidArgument, "needs _leaky_relu to return a scalar"),
        (lambda: derivcheck.check(np.sign, _twice, derivative="derivative", inputs={"x": (3,)}),
         InvalidArgument, "to map a scalar to a scalar"),
        (lambda: derivcheck.check(np.sign, _leaky_relu, derivative="derivative", inputs={"x": ()}, dtype="int8"),
         InvalidArgument, "unsupported dtype 'int8'"),
        (lambda: derivcheck.check_custom_vjp(_leaky_relu, inputs={"x": ()}),
         InvalidArgument, r"a function with a custom rule \(@jax.custom_vjp"),
        (lambda: derivcheck.check(lambda x: np.ones(x.shape, np.float64), _leaky_relu, derivative="derivative",
                                  inputs={"x": (3,)}, dtype="float32"),
         ClaimError, r"returns float64 for float32 inputs \(output output\); cast with"),
        (lambda: derivcheck.check(lambda x: np.ones(4, x.dtype), _leaky_relu, derivative="derivative",
                                  inputs={"x": (3,)}), ClaimError, r"shape \(4,\) from the closed form but \(3,\)"),
        (lambda: derivcheck.check(_raises(ZeroDivisionError("by hand")), _leaky_relu, derivative="derivative",
                                  inputs={"x": ()}), ClaimError, "closed form raised ZeroDivisionError: by hand"),
        (lambda: derivcheck.check(np.sign, _raises(RuntimeError("no truth")), derivative="derivative",
                                  inputs={"x": ()}), ClaimError, "reference raising raised RuntimeError"),
    ],
)
def test_bad_argument_is_one_clear_error(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_a_check_that_decides_no_point_fails():
    result = derivcheck.check(lambda x: x, lambda x: jnp.full_like(x, jnp.nan), inputs={"x": (3,)}, examples=0)
    assert result.verdict == derivcheck.Verdict.FAILED and result.points == 0
    assert "no point could be decided" in result.detail


def _sum_of_softmax(x):
    return jnp.sum(jax.nn.softmax(x))


def _softmax_jacobian_transpose_times_ones(x):
    s = jax.nn.softmax(x)
    return s - s * jnp.sum(s)  # (diag(s) - s s^T)^T 1, identically zero


def test_a_check_against_a_constant_truth_is_flagged_vacuous():
    with pytest.warns(derivcheck.VacuousCheckWarning, match="same, within its own rounding, at every one"):
        result = derivcheck.check(_softmax_jacobian_transpose_times_ones, _sum_of_softmax, derivative="gradient",
                                  inputs={"x": derivcheck.logits(shape=(4,))})
    assert result.passed and result.points > 0
    assert "any closed form returning that constant would pass" in result.vacuous


def test_a_closed_form_that_restates_its_reference_is_flagged_vacuous():
    def twice(x):
        return 2 * x

    with pytest.warns(derivcheck.VacuousCheckWarning, match="restates it"):
        result = derivcheck.check(twice, lambda x: 2 * x, inputs={"x": (3,)})
    assert result.vacuous


def test_a_check_that_compares_varying_truths_is_not_vacuous():
    result = derivcheck.check(lambda x: 1 - jnp.tanh(x) ** 2, jnp.tanh, derivative="derivative", inputs={"x": (3,)})
    assert _holds(result) and result.vacuous == ""


def test_public_api_is_explicit():
    for name in derivcheck.__all__:
        assert getattr(derivcheck, name).__doc__ or not callable(getattr(derivcheck, name)), name
    for name in derivcheck.testing.__all__:
        assert getattr(derivcheck.testing, name).__doc__, name
