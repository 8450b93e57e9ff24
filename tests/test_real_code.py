"""No false alarms on code the project did not write, and no misses either.

Each table is one class of real-world rule: NumPy closed forms (judged by their own
rounding), custom rules (a truth that is not autodiff of their definition at a tie),
kinks on relations and intermediates (found in the forward's jaxpr), and the JAX
operations users write (each primitive bounded). Every right rule must be verified in both
dtypes; every planted fault (a wrong rule beside it, or the mutants of a host closed form)
must fail.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import strategies as st

import derivcheck
from derivcheck.mutants import host_mutants_of

DTYPES = ("float32", "float64")


@dataclasses.dataclass(frozen=True)
class Case:
    """One rule: ``call(closed_form, dtype)`` returns the Result; ``right`` must pass and
    ``wrong`` (None: only the host mutants) must fail."""

    name: str
    call: Callable[[Callable[..., Any], str], derivcheck.Result]
    right: Callable[..., Any]
    wrong: Callable[..., Any]
    #: The closed form's argument shapes (directions included), for planting host mutants.
    shapes: tuple[tuple[int, ...], ...] = ()


def _checked(reference, **options):
    def call(closed_form, dtype):
        return derivcheck.check(closed_form, reference, dtype=dtype, **options)

    return call


# --- 1. NumPy closed forms, judged by their own arithmetic ----------------------------------


def _sigmoid(x):  # written naively: autodiff of it does not cancel where s (1 - s) does
    return 1 / (1 + jnp.exp(-x))


def _np_sigmoid_grad(x):
    s = 1 / (1 + np.exp(-x))
    return s * (1 - s)


def _softmax_naive(x):
    e = jnp.exp(x)
    return e / jnp.sum(e)


def _np_softmax_vjp(x, cotangent):  # the max-shifted backward pass of a NumPy layer library
    e = np.exp(x - np.max(x))
    p = e / np.sum(e)
    return p * (cotangent - np.sum(cotangent * p))


def _bce(p, y):
    return -jnp.mean(y * jnp.log(p) + (1 - y) * jnp.log1p(-p))


def _np_bce_grad(p, y):  # (y - 1) / (N - N p): cancels near p = 1
    n = p.size
    return -y / (n * p) - (y - 1) / (n - n * p)


def _logdet_gram(m):
    return jnp.linalg.slogdet(m @ m.T + jnp.eye(m.shape[0], dtype=m.dtype))[1]


def _np_logdet_gram_grad(m):  # LAPACK's solve
    return 2 * np.linalg.solve(m @ m.T + np.eye(m.shape[0], dtype=m.dtype), m)


def _dense(x, w, b):
    return jnp.sum(jnp.tanh(x @ w + b[None, :]))


def _np_dense_grads(x, w, b):  # a layer's backward pass
    g = 1 - np.tanh(x @ w + b[None, :]) ** 2
    return x.T @ g, g.sum(axis=0)


HOST_CASES = [
    Case("sigmoid'", _checked(_sigmoid, derivative="derivative", inputs={"x": (8,)}), _np_sigmoid_grad,
         lambda x: np.exp(-x) / (1 + np.exp(-x)), ((8,),)),
    Case("softmax vjp", _checked(_softmax_naive, derivative="vjp", inputs={"x": derivcheck.logits(shape=(5,))}),
         _np_softmax_vjp, lambda x, c: c * np.exp(x) / np.sum(np.exp(x)), ((5,), (5,))),
    Case("binary cross-entropy", _checked(_bce, derivative="gradient",
                                          inputs={"p": derivcheck.probability(shape=(4,)),
                                                  "y": derivcheck.probability(shape=(4,))}),
         _np_bce_grad, lambda p, y: (p - y) / p.size, ((4,), (4,))),
    Case("logdet of a Gram matrix", _checked(_logdet_gram, derivative="gradient",
                                             inputs={"m": derivcheck.real(shape=(3, 3), bound=3.0)}),
         _np_logdet_gram_grad, lambda m: 2 * m, ((3, 3),)),
    Case("dense tanh layer", _checked(_dense, derivative="gradient", wrt=("w", "b"),
                                      inputs={"x": (2, 3), "w": (3, 3), "b": (3,)}),
         _np_dense_grads, lambda x, w, b: (x.T @ (1 - np.tanh(x @ w + b[None, :])),
                                           (1 - np.tanh(x @ w + b[None, :])).sum(axis=0)),
         ((2, 3), (3, 3), (3,))),
]


@pytest.mark.parametrize("case", HOST_CASES, ids=lambda c: c.name)
@pytest.mark.parametrize("dtype", DTYPES)
def test_numpy_rule_is_judged_by_its_own_rounding(case, dtype):
    result = case.call(case.right, dtype)
    assert result.verdict == derivcheck.Verdict.VERIFIED, (result.detail, result.counterexample)
    assert "host closed form (rounding measured)" not in result.estimated_operations  # traced through NumPy
    assert not case.call(case.wrong, dtype).passed


@pytest.mark.parametrize("case", HOST_CASES, ids=lambda c: c.name)
def test_every_host_mutant_is_killed(case):
    args = tuple(jax.ShapeDtypeStruct(s, np.float64) for s in case.shapes)
    survivors = []
    for dtype in DTYPES:
        mutants = host_mutants_of(case.right, args, dtype)
        assert len(mutants) >= 3
        survivors += [(name, dtype) for name, mutant in mutants.items() if case.call(mutant, dtype).passed]
    assert not survivors


def test_untraceable_numpy_rule_is_measured_and_says_so():
    def grad(x):  # np.asarray and a Python loop: NumPy's tracing cannot follow it
        x = np.asarray(x)
        return np.array([1 - np.tanh(v) ** 2 for v in x], dtype=x.dtype)

    for dtype in DTYPES:
        result = derivcheck.check(grad, jnp.tanh, derivative="derivative", inputs={"x": (4,)}, dtype=dtype)
        assert result.verdict == derivcheck.Verdict.VERIFIED
        assert "host closed form (rounding measured)" in result.estimated_operations
        wrong = derivcheck.check(lambda x: grad(x) * (1 + 2.0**-9), jnp.tanh, derivative="derivative",
                                 inputs={"x": (4,)}, dtype=dtype)
        assert not wrong.passed


# --- 2. Custom rules: the truth where autodiff of the definition is not one ------------------


@jax.custom_jvp
def _softplus(x):  # the usual stable definition: max and |x| kink at 0, where the rule is right
    return jnp.maximum(x, 0) + jnp.log1p(jnp.exp(-jnp.abs(x)))


_softplus.defjvp(lambda p, t: (_softplus(p[0]), jax.nn.sigmoid(p[0]) * t[0]))


@jax.custom_jvp
def _logaddexp_wrong_at_ties(x1, x2):
    return jnp.logaddexp(x1, x2)


@_logaddexp_wrong_at_ties.defjvp
def _(primals, tangents):
    (x1, x2), (t1, t2) = primals, tangents
    w1 = jnp.where(x1 >= x2, 1.0, jax.nn.sigmoid(x1 - x2))  # 1 and 1 at a tie: sums to 2
    w2 = jnp.where(x1 <= x2, 1.0, jax.nn.sigmoid(x2 - x1))
    return jnp.logaddexp(x1, x2), w1 * t1 + w2 * t2


TWO = {"x1": (3,), "x2": (3,)}
CUSTOM_CASES = [
    ("jnp.logaddexp", jnp.logaddexp, TWO),
    ("jnp.logaddexp2", jnp.logaddexp2, TWO),
    ("jax.nn.relu", jax.nn.relu, {"x": (4,)}),
    ("jax.scipy.special.xlogy", jax.scipy.special.xlogy,
     {"x": derivcheck.nonnegative(shape=(3,)), "y": derivcheck.positive(shape=(3,))}),
    ("stable softplus", _softplus, {"x": (4,)}),
]


@pytest.mark.parametrize(("name", "f", "inputs"), CUSTOM_CASES, ids=[c[0] for c in CUSTOM_CASES])
@pytest.mark.parametrize("dtype", DTYPES)
def test_correct_custom_rule_of_jax_passes_at_its_ties(name, f, inputs, dtype):
    result = derivcheck.check_custom_jvp(f, inputs=inputs, dtype=dtype)
    assert result.verdict == derivcheck.Verdict.VERIFIED, (result.detail, result.counterexample)


def test_custom_rule_wrong_only_at_a_tie_is_caught():
    result = derivcheck.check_custom_jvp(_logaddexp_wrong_at_ties, inputs=TWO, dtype="float64")
    assert not result.passed
    ce = result.counterexample
    assert ce["inputs"]["x1"] == ce["inputs"]["x2"] or any(
        a == b for a, b in zip(ce["inputs"]["x1"], ce["inputs"]["x2"]))


def test_explicit_reference_for_a_custom_rule():
    def naive(x1, x2):
        return jnp.log(jnp.exp(x1) + jnp.exp(x2))

    assert derivcheck.check_custom_jvp(jnp.logaddexp, inputs=TWO, reference=naive).passed
    assert not derivcheck.check_custom_jvp(_logaddexp_wrong_at_ties, inputs=TWO, reference=naive).passed


# --- 3. Kinks on relations and on intermediates, found automatically -------------------------


def _max_loss(x, y):
    return jnp.sum(jnp.maximum(x, y))


def _leaky_layer(x, w, b):
    z = x @ w + b[None, :]
    return jnp.sum(jnp.where(z > 0, z, 0.01 * z))


def _leaky_layer_grads(x, w, b, slope_at_zero=0.01):
    z = x @ w + b[None, :]
    s = jnp.where(z > 0, 1.0, jnp.where(z < 0, 0.01, slope_at_zero)).astype(z.dtype)
    return x.T @ s, s.sum(axis=0)


def _hinge(w, y):
    return jnp.sum(jnp.maximum(0.0, 1 - y * w))


KINK_CASES = [
    Case("maximum(x, y) with x >= y", _checked(_max_loss, derivative="gradient", wrt=("x", "y"),
                                               inputs={"x": (4,), "y": (4,)}),
         lambda x, y: (jnp.where(x >= y, 1.0, 0.0).astype(x.dtype), jnp.where(x >= y, 0.0, 1.0).astype(x.dtype)),
         # y's derivative wrong wherever x > y. (1, 1) at a tie alone is not caught: each
         # element lies between the one-sided values (README, "Kinks").
         lambda x, y: (jnp.where(x >= y, 1.0, 0.0).astype(x.dtype), jnp.where(x >= y, 1.0, 0.0).astype(x.dtype))),
    Case("dense LeakyReLU at XW + b = 0", _checked(_leaky_layer, derivative="gradient", wrt=("w", "b"),
                                                   inputs={"x": (2, 3), "w": (3, 2), "b": (2,)}),
         _leaky_layer_grads, lambda x, w, b: _leaky_layer_grads(x, w, b, slope_at_zero=2.0)),
    Case("hinge at margin 1", _checked(_hinge, derivative="gradient", inputs={"w": (4,), "y": (4,)}),
         lambda w, y: jnp.where(y * w < 1, -y, 0.0).astype(w.dtype),
         lambda w, y: jnp.where(y * w <= 1, -y, -2 * y).astype(w.dtype)),
    Case("L1 loss |x - y| with sign(0) = 0", _checked(lambda x, y: jnp.sum(jnp.abs(x - y)), derivative="gradient",
                                                       inputs={"x": (4,), "y": (4,)}),
         lambda x, y: jnp.sign(x - y), lambda x, y: jnp.where(x >= y, 1.0, -1.0).astype(x.dtype) * 2),
]


@pytest.mark.parametrize("case", KINK_CASES, ids=lambda c: c.name)
@pytest.mark.parametrize("dtype", DTYPES)
def test_valid_subgradient_at_a_found_kink_passes_and_a_wrong_one_fails(case, dtype):
    result = case.call(case.right, dtype)
    assert result.verdict == derivcheck.Verdict.VERIFIED, (result.detail, result.counterexample)
    assert not case.call(case.wrong, dtype).passed


# --- 4. The JAX a user writes: every operation bounded -------------------------------------


def _square_matrix(x):
    return jnp.outer(x, x) / 4 + 2 * jnp.eye(x.shape[0], dtype=x.dtype)


def _distinct_spectrum(x):  # eigenvalues 1, 3, 5, ... moved by a rank-one term: apart
    return jnp.outer(x, x) / 16 + jnp.diag(2 * jnp.arange(x.shape[0], dtype=x.dtype) + 1)


OPERATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "tan": lambda x: jnp.tan(x / 4), "arcsin": lambda x: jnp.arcsin(jnp.tanh(x)),
    "arccos": lambda x: jnp.arccos(jnp.tanh(x)), "arctan": jnp.arctan, "sinh": jnp.sinh, "cosh": jnp.cosh,
    "arcsinh": jnp.arcsinh, "arctanh": lambda x: jnp.arctanh(jnp.tanh(x) / 2),
    "exact gelu (erfc)": lambda x: jax.nn.gelu(x, approximate=False),
    "erfinv": lambda x: jax.scipy.special.erfinv(jnp.tanh(x) / 2),
    "lgamma": lambda x: jax.scipy.special.gammaln(jnp.abs(x) + 1),
    "digamma": lambda x: jax.scipy.special.digamma(jnp.abs(x) + 1), "remainder": lambda x: jnp.remainder(x, 0.75),
    "sort": jnp.sort, "cumsum": jnp.cumsum, "cumprod": lambda x: jnp.cumprod(jnp.tanh(x)),
    "top_k": lambda x: jax.lax.top_k(x, 2)[0], "any": lambda x: jnp.where(jnp.any(x > 0), x, -x),
    "scatter (.at[].set)": lambda x: x.at[1].set(x[0] * 3), "stack": lambda x: jnp.stack([x, 2 * x]),
    "tile": lambda x: jnp.tile(x, 2), "fori_loop": lambda x: jax.lax.fori_loop(0, 3, lambda i, c: c * jnp.tanh(x), x),
    "scan": lambda x: jax.lax.scan(lambda c, y: (c + y * c, c), jnp.ones((), x.dtype), x)[1],
    "while_loop": lambda x: jax.lax.while_loop(lambda c: c[0] < 3, lambda c: (c[0] + 1, c[1] * 1.5), (0, x))[1],
    "cond": lambda x: jax.lax.cond(x[0] > 0, lambda z: z * 2, lambda z: z / 3, x),
    "jax.checkpoint": jax.checkpoint(lambda x: jnp.sin(x) * x),
    "convolve": lambda x: jnp.convolve(x, jnp.array([1.0, -2.0, 0.5], x.dtype)),
    "max pool": lambda x: jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (2,), (1,), "VALID"),
    "avg pool": lambda x: jax.lax.reduce_window(x, jnp.zeros((), x.dtype), jax.lax.add, (2,), (1,), "VALID") / 2,
    "cholesky": lambda x: jnp.linalg.cholesky(_square_matrix(x)),
    "solve (lu)": lambda x: jnp.linalg.solve(_square_matrix(x), x),
    "triangular solve": lambda x: jax.scipy.linalg.solve_triangular(jnp.tril(_square_matrix(x)), x, lower=True),
    "eigvalsh": lambda x: jnp.linalg.eigvalsh(_square_matrix(x)),
    "singular values": lambda x: jnp.linalg.svd(_square_matrix(x), compute_uv=False),
    "qr (r)": lambda x: jnp.abs(jnp.linalg.qr(_square_matrix(x))[1]),
    "det": lambda x: jnp.linalg.det(_square_matrix(x)), "inv": lambda x: jnp.linalg.inv(_square_matrix(x)),
    "lu": lambda x: jax.lax.linalg.lu(_square_matrix(x))[0],
    "eigh (vectors)": lambda x: jnp.abs(jnp.linalg.eigh(_distinct_spectrum(x))[1]),
    "svd (vectors)": lambda x: jnp.abs(jnp.linalg.svd(_distinct_spectrum(x) + jnp.triu(_square_matrix(x), 1))[0]),
    "median": jnp.median, "prod": lambda x: jnp.prod(jnp.tanh(x)),
    "pure_callback": lambda x: jax.pure_callback(lambda y: np.sin(y).astype(y.dtype),
                                                 jax.ShapeDtypeStruct(x.shape, x.dtype), x, vmap_method="sequential"),
}


@pytest.mark.parametrize("name", sorted(OPERATIONS))
def test_operation_in_float32_is_within_its_bound_of_float64(name):
    """Each operation checked against itself: float32 against the float64 truth, within the
    bound; and one element moved by 2^10 float32 ulps is caught. As a derivative check the
    pair restates itself, and is flagged so; here the float32 rounding is what is tested."""
    f = OPERATIONS[name]
    inputs = {"x": derivcheck.real(shape=(4,), bound=3.0)}
    result = _against_itself(f, inputs=inputs)
    assert result.verdict == derivcheck.Verdict.VERIFIED, (result.detail, result.counterexample)

    def off(x):
        y = f(x)
        return y * (1 + 2.0**10 * jnp.finfo(y.dtype).eps)

    assert not derivcheck.check(off, f, inputs=inputs, dtype="float32", examples=0).passed


def _against_itself(f, *, inputs):
    """``f`` in float32 checked against itself in float64: the rounding model under test."""
    with pytest.warns(derivcheck.VacuousCheckWarning, match="restates it"):
        result = derivcheck.check(f, f, inputs=inputs, dtype="float32", examples=0)
    assert "restates it" in result.vacuous
    return result


def test_estimated_operations_are_named_in_the_result():
    result = _against_itself(OPERATIONS["cumprod"], inputs={"x": (3,)})
    assert "cumprod" in result.estimated_operations
    # A derived bound (cholesky) or an elementwise one: nothing estimated.
    assert _against_itself(OPERATIONS["cholesky"], inputs={"x": (3,)}).estimated_operations == ()
    assert _against_itself(jnp.tanh, inputs={"x": (3,)}).estimated_operations == ()


# --- 5. Overflow and smaller traps ---------------------------------------------------------


def test_truth_beyond_the_dtype_range_is_undecided_not_failed():
    result = derivcheck.check(jnp.exp, jnp.exp, derivative="derivative", inputs={"x": (4,)}, dtype="float32")
    assert result.verdict == derivcheck.Verdict.VERIFIED and result.undecided > 0


def test_failed_result_has_an_error_ratio_above_one():
    result = derivcheck.check(lambda x: jnp.where(x > 0, jnp.inf, 1.0).astype(x.dtype), lambda x: x,
                              derivative="derivative", inputs={"x": (3,)}, dtype="float32")
    assert not result.passed and result.max_error_ratio > 1


def test_strategy_of_a_dict_with_several_keys_is_read_by_name():
    points = st.fixed_dictionaries({"y": st.floats(-2, 2).map(np.float64), "x": st.floats(-2, 2).map(np.float64)})
    result = derivcheck.check(lambda x, y: (y, x), lambda x, y: x * y, derivative="gradient", wrt=("x", "y"),
                              inputs=points)
    assert result.passed


def test_worst_element_shown_is_one_that_was_compared():
    def grad(x):  # wrong at x[1]; at x[0] = 0 the truth (d sqrt|x|) is infinite, never compared
        return jnp.stack([jnp.zeros((), x.dtype), 3 * x[1]])

    def f(x):
        return jnp.sqrt(jnp.abs(x[0])) + x[1] ** 2 / 2

    ce = derivcheck.check(grad, f, derivative="gradient", inputs={"x": (2,)}, dtype="float64").counterexample
    assert ce["index"] == [1] and np.all(np.isfinite(ce["reference"]))


def test_numpy_float64_constant_in_the_forward_does_not_break_the_check():
    def f(m):
        return jnp.sum(jnp.tanh(m + 4 * np.eye(3)))

    def grad(m):
        return 1 - jnp.tanh(m + 4 * jnp.eye(3, dtype=m.dtype)) ** 2

    for dtype in DTYPES:
        assert derivcheck.check(grad, f, derivative="gradient", inputs={"m": (3, 3)}, dtype=dtype).passed


def test_shrinking_keeps_directions_non_zero():
    def vjp(x, cotangent):  # NaN at 0, wrong nowhere else
        return jnp.where(x == 0, jnp.nan, cotangent * jnp.cos(x)).astype(x.dtype)

    ce = derivcheck.check(vjp, jnp.sin, derivative="vjp", inputs={"x": (3,)}, dtype="float64").counterexample
    assert all(c != 0 for c in ce["inputs"]["cotangent"])


def test_strategy_inputs_are_checked_at_declared_kinks():
    def grad(x):  # one-sided value 1 at the kink: valid
        return jnp.where(x >= 0, 1.0, 0.01).astype(x.dtype)

    points = st.fixed_dictionaries({"x": st.floats(-3, 3).map(lambda v: np.full((2,), v))})
    result = derivcheck.check(grad, lambda x: jnp.where(x > 0, x, 0.01 * x), derivative="derivative",
                              inputs=points, kinks=[0.0])
    assert result.passed


def test_custom_vjp_whose_backward_calls_a_host_callback():
    @jax.custom_vjp
    def f(x):
        return jnp.sin(x)

    def bwd(x, g):  # no vmap_method: derivcheck maps it point by point
        return (jax.pure_callback(lambda a, c: (np.cos(a) * c).astype(a.dtype),
                                  jax.ShapeDtypeStruct(x.shape, x.dtype), x, g),)

    f.defvjp(lambda x: (jnp.sin(x), x), bwd)
    for dtype in DTYPES:
        result = derivcheck.check_custom_vjp(f, inputs={"x": (3,)}, dtype=dtype)
        assert result.verdict == derivcheck.Verdict.VERIFIED and "pure_callback" in result.estimated_operations


def test_import_and_check_leave_the_jax_configuration_alone():
    script = """
import jax, json
import jax.numpy as jnp
before = {k: getattr(jax.config, k) for k in ("jax_enable_x64", "jax_default_matmul_precision")}
import derivcheck
after_import = {k: getattr(jax.config, k) for k in before}
results = [derivcheck.check(lambda x: 1 - jnp.tanh(x) ** 2, jnp.tanh, derivative="derivative",
                            inputs={"x": (3,)}, dtype=d, examples=0).verdict for d in ("float32", "float64")]
after_check = {k: getattr(jax.config, k) for k in before}
print(json.dumps([before, after_import, after_check, results, str(jnp.zeros(1).dtype)]))
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                         env={"JAX_PLATFORMS": "cpu", "PATH": "/usr/bin:/bin"})
    before, after_import, after_check, verdicts, default_dtype = json.loads(out.stdout.splitlines()[-1])
    assert before == after_import == after_check
    assert verdicts == ["verified", "verified"] and default_dtype == "float32"
