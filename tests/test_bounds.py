"""The error-bound interpreter: bounds hold for real float32 arithmetic, and are tight."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from derivcheck._bounds import evaluate_with_bound, recording_estimates
from derivcheck._narrow import _contraction_holds, _rounded_once, narrow_arithmetic


def _sigmoid_derivative(x):
    s = 1 / (1 + jnp.exp(-x))
    return s * (1 - s)


def _softmax_jacobian_vector(x):
    y = jnp.exp(x - jnp.max(x))
    y = y / jnp.sum(y)
    return (jnp.diag(y) - jnp.outer(y, y)) @ x


def _network_like(x):
    W = jnp.reshape(jnp.arange(x.size * x.size, dtype=x.dtype), (x.size, x.size)) / 7
    return jnp.tanh(W @ x) * jnp.log1p(x**2) - x**3


FUNCTIONS = [_sigmoid_derivative, _softmax_jacobian_vector, _network_like]


@functools.cache
def _bounded(fn, narrow=None):
    """``fn`` and its bound, compiled once per function and model (then once per shape):
    a fresh jit per Hypothesis example would compile every example anew."""
    return jax.jit(lambda x: evaluate_with_bound(fn, x, narrow=narrow))

vectors = hnp.arrays(np.float32, st.integers(1, 6),
                     elements=st.floats(-30, 30, width=32, allow_subnormal=False))


@pytest.mark.parametrize("fn", FUNCTIONS, ids=lambda f: f.__name__)
@given(x=vectors)
def test_float32_error_never_exceeds_its_bound(fn, x):
    value, bound = _bounded(fn)(jnp.asarray(x))
    exact = fn(jnp.asarray(x, jnp.float64))
    error = np.abs(np.asarray(value, np.float64) - np.asarray(exact))
    assert np.all(error <= np.asarray(bound) + 1e-300), (error, bound)


def test_exact_operations_have_zero_bound():
    x = jnp.array([1.5, -2.0, 3.25])
    _, bound = evaluate_with_bound(lambda x: jnp.abs(-x[::-1]).reshape(3, 1).T, x)
    assert np.all(np.asarray(bound) == 0)


def test_bound_is_a_few_ulps_for_one_product():
    x = jnp.array([3.0], jnp.float32)
    _, bound = evaluate_with_bound(lambda x: x * jnp.float32(1.375), x)  # a short constant: exact
    eps = np.finfo(np.float32).eps
    assert eps * 4.125 <= float(bound[0]) <= 2 * eps * 4.125


def test_a_rounded_constant_is_charged_its_rounding():
    # 0.01 in a float32 function is float32(0.01), 2.2e-10 away from the float64 truth's 0.01.
    x = jnp.array([-1.0, 2.0], jnp.float32)
    value, bound = evaluate_with_bound(lambda x: jnp.where(x > 0, 1.0, 0.01), x)
    assert abs(float(value[0]) - 0.01) <= float(bound[0]) and float(bound[1]) == 0


def test_cancellation_is_bounded_by_the_terms_not_the_result():
    x = jnp.array([1e8, 1.0, -1e8], jnp.float32)
    value, bound = evaluate_with_bound(jnp.sum, x)
    assert float(bound) >= 2 * np.finfo(np.float32).eps * 2e8  # (K - 1) eps sum|x|
    assert abs(float(value) - 1.0) <= float(bound)


def test_loops_are_interpreted_and_unknown_operations_estimated_and_recorded():
    def loop(x):
        return jax.lax.while_loop(lambda c: c[0] < 3, lambda c: (c[0] + 1, c[1] * 1.1), (0, x))[1]

    x = jnp.array([1.5, -2.5], jnp.float32)
    with recording_estimates() as estimated:
        value, bound = jax.jit(lambda x: evaluate_with_bound(loop, x))(x)
        jax.jit(lambda x: evaluate_with_bound(lambda y: jnp.linalg.cholesky(jnp.outer(y, y) + 4 * jnp.eye(2)), x))(x)
        jax.jit(lambda x: evaluate_with_bound(lambda y: jnp.cumprod(jnp.tanh(y)), x))(x)
    exact = np.asarray(x, np.float64) * 1.1**3
    assert np.all(np.abs(np.asarray(value, np.float64) - exact) <= np.asarray(bound))
    assert estimated == {"cumprod"}  # cholesky has a derived bound


# --- Linear algebra: Higham's backward errors through perturbation theory ------------------


def _symmetric(x):
    return (x + x.T) / 2


def _gram(x):
    return x @ x.T + 0.1 * jnp.eye(x.shape[0], dtype=x.dtype)


def _tall(x):
    return jnp.concatenate([x, x[:2] / 2 + 1])


#: Each decomposition's results in a form its sign conventions do not change: eigenvectors
#: and singular vectors as outer products of a column with itself, QR's factors by |.|.
LINEAR_ALGEBRA = {
    "triangular solve": lambda x: jax.scipy.linalg.solve_triangular(
        jnp.tril(x) + 3 * jnp.eye(x.shape[0], dtype=x.dtype), x, lower=True),
    "triangular solve (right, transposed)": lambda x: jax.lax.linalg.triangular_solve(
        jnp.triu(x) + 2 * jnp.eye(x.shape[0], dtype=x.dtype), x, left_side=False, lower=False, transpose_a=True),
    "cholesky": lambda x: jnp.linalg.cholesky(_gram(x)),
    "cho_solve": lambda x: jax.scipy.linalg.cho_solve(jax.scipy.linalg.cho_factor(_gram(x)), x[:, 0]),
    "lu": lambda x: jax.lax.linalg.lu(x)[0],
    "inv": jnp.linalg.inv,
    "slogdet": lambda x: jnp.linalg.slogdet(x)[1],
    "eigvalsh": lambda x: jnp.linalg.eigvalsh(_symmetric(x)),
    "eigh vectors": lambda x: jnp.einsum("ik,jk->kij", *(2 * (jnp.linalg.eigh(_symmetric(x))[1],))),
    "singular values": lambda x: jnp.linalg.svd(x, compute_uv=False),
    "svd u": lambda x: jnp.einsum("ik,jk->kij", *(2 * (jnp.linalg.svd(x)[0],))),
    "svd vt": lambda x: jnp.einsum("ki,kj->kij", *(2 * (jnp.linalg.svd(x)[2],))),
    "qr": lambda x: [jnp.abs(f) for f in jnp.linalg.qr(x)],
    "qr (tall)": lambda x: [jnp.abs(f) for f in jnp.linalg.qr(_tall(x))],
}


def _matrices(n: int, seed: int) -> list[np.ndarray]:
    """Seeded float32 matrices over four decades of scale, a third of them with condition 10^3."""
    rng = np.random.default_rng(seed)
    out = []
    for k in range(12):
        x = rng.standard_normal((n, n)) * 10.0 ** rng.uniform(-2, 2)
        if k % 3 == 0:
            u, _, vt = np.linalg.svd(rng.standard_normal((n, n)))
            x = u @ np.diag(np.logspace(0, -3, n)) @ vt
        out.append(x.astype(np.float32))
    return out


@pytest.mark.parametrize("name", sorted(LINEAR_ALGEBRA))
@pytest.mark.parametrize("n", [2, 3, 5])
def test_decompositions_are_bounded_not_estimated_and_the_bound_holds(name, n):
    fn = LINEAR_ALGEBRA[name]
    bounded = jax.jit(lambda x: evaluate_with_bound(fn, x))
    for x in _matrices(n, seed=n):
        with recording_estimates() as estimated:
            values, bounds = bounded(jnp.asarray(x))
        exact = fn(jnp.asarray(x, jnp.float64))
        for value, bound, truth in zip(*map(jax.tree_util.tree_leaves, (values, bounds, exact))):
            error = np.abs(np.asarray(value, np.float64) - np.asarray(truth))
            judged = np.isfinite(np.asarray(bound))
            assert judged.any() and np.all(error[judged] <= np.asarray(bound)[judged]), (x, error, bound)
        assert estimated == set(), estimated


def test_a_repeated_eigenvalue_leaves_its_eigenvectors_unbounded():
    _, (value_bound, vector_bound) = evaluate_with_bound(jnp.linalg.eigh, jnp.eye(3, dtype=jnp.float32))
    assert np.all(np.isinf(np.asarray(vector_bound))) and np.all(np.isfinite(np.asarray(value_bound)))


def _relu_layer(x):
    # A mask from a rounded sum: in bfloat16 and float16 the sum can land on the other side
    # of 0 from its exact value, and the bound must charge the flipped mask (a branch doubt).
    z = x[:-1] * x[1:] + x[::-1][:-1]
    return jnp.where(z > 0, x[1:], jnp.zeros_like(x[1:])) + jnp.sign(z) * (z > 0).astype(x.dtype)


def _dot(x):
    # XLA's CPU accumulates bfloat16 and float16 products in float32 and rounds once at the
    # end (derivcheck._narrow finds it); the worst case charges accumulation in the dtype.
    W = jnp.reshape(jnp.arange(x.size * x.size, dtype=x.dtype), (x.size, x.size)) / 7
    return W @ x + x @ W


# float16's range: exp(8) and x**3 at 8 stay below 65504; bfloat16 has float32's.
LOW_PRECISION_INPUTS = {"bfloat16": 30.0, "float16": 8.0}


@pytest.mark.parametrize("model", ["worst case", "probed"])
@pytest.mark.parametrize("dtype", sorted(LOW_PRECISION_INPUTS))
@pytest.mark.parametrize("fn", [*FUNCTIONS, _relu_layer, _dot], ids=lambda f: f.__name__)
@given(data=st.data())
def test_low_precision_error_never_exceeds_its_bound(fn, dtype, model, data):
    bound_of_inputs = LOW_PRECISION_INPUTS[dtype]
    x = data.draw(hnp.arrays(np.float32, st.integers(2, 6),
                             elements=st.floats(-bound_of_inputs, bound_of_inputs, width=32, allow_subnormal=False)))
    x = jnp.asarray(x, dtype)  # rounded to the dtype: the point checked
    x = jnp.where(jnp.abs(x.astype(jnp.float32)) < float(jnp.finfo(dtype).tiny), 0, x).astype(dtype)
    # "probed": the model of how this machine's CPU computes the dtype, the one a check uses.
    narrow = narrow_arithmetic("cpu", dtype) if model == "probed" else None
    value, bound = _bounded(fn, narrow)(x)
    exact = np.asarray(fn(x.astype(jnp.float64)))
    error = np.abs(np.asarray(value, np.float64) - exact)
    assert np.all(error <= np.asarray(bound) + 1e-300), (error, bound)


def test_a_mask_flipped_by_rounding_is_charged():
    # (1 + 2**-7)**2 - (1 + 2**-6) is 2**-14 > 0 exactly, 0 in bfloat16: the mask is wrong.
    x = jnp.asarray([1 + 2.0**-7, 1 + 2.0**-7, -(1 + 2.0**-6), 3.0], jnp.bfloat16)

    def masked(x):
        return jnp.where(x[0] * x[1] + x[2] > 0, x[3], 0.0)

    value, bound = evaluate_with_bound(masked, x)
    assert float(value) == 0.0 and masked(x.astype(jnp.float64)) == 3.0
    assert float(bound) >= 3.0


def test_an_overflow_keeps_its_nan_bound_and_a_rounded_zero_ratio_an_infinite_one():
    big = jnp.asarray([50.0], jnp.float32)
    _, overflowed = evaluate_with_bound(lambda x: (jnp.exp(2 * x) - 1) / (jnp.exp(2 * x) + 1), big)
    tiny_gap = jnp.asarray([1.0, 1.0 + 2.0**-9], jnp.bfloat16)  # 1 + 2**-9 rounds to 1 in bfloat16
    value, unbounded = evaluate_with_bound(lambda x: (x[1] - x[0]) / (x[1] - x[0]), tiny_gap)
    assert np.isnan(np.asarray(overflowed)).all()
    assert np.isnan(np.asarray(value)) and np.asarray(unbounded) == np.inf


def test_the_cpu_probe_finds_float32_arithmetic_and_accumulation():
    # XLA's CPU backend, measured: correctly rounded exp, log, tanh, ... from float32, and
    # float32 accumulation in matrix products and reductions (README, "Devices and precision").
    for dtype in ("bfloat16", "float16"):
        found = narrow_arithmetic("cpu", dtype)
        assert found.wide_accumulation and {"exp", "log", "tanh", "div", "sqrt"} <= found.once_rounded
        assert "logistic" not in found.once_rounded  # a composition in the narrow dtype: 1.08 eps


def test_the_probe_rejects_a_second_rounding_and_narrow_accumulation():
    exact = np.asarray([1.0 + 2.0**-9])  # halfway between two bfloat16 neighbours
    assert _rounded_once(np.asarray([1.0]), exact, jnp.bfloat16).all()
    assert not _rounded_once(np.asarray([1.0 + 2.0**-6]), exact, jnp.bfloat16).any()
    # A sum accumulated in bfloat16 (as a GPU's matrix-vector kernel does), each
    # partial sum rounded: 1 + 2**-9 is 1 in bfloat16, so 1 + 512 * 2**-9 sums to 1, not 2.
    a = np.concatenate([[1.0], np.full(512, 2.0**-9)])
    partial = np.float64(0)
    for term in a:
        partial = np.float64(jnp.bfloat16(partial + term))
    assert not _contraction_holds(np.asarray([partial]), np.asarray([a.sum()]), np.asarray([np.abs(a).sum()]),
                                  a.size, jnp.bfloat16)
    assert _contraction_holds(np.asarray([np.float64(jnp.bfloat16(a.sum()))]), np.asarray([a.sum()]),
                              np.asarray([np.abs(a).sum()]), a.size, jnp.bfloat16)


def _relu_mask_of_product(x):
    return jnp.where(x[0] * x[1] > 0, x[2], jnp.zeros_like(x[2]))


def test_an_underflowed_product_is_doubted_at_zero_and_an_exact_zero_is_not():
    # 2**-13 * 2**-13 = 2**-26 > 0 exactly, 0 in float16 (below half its least subnormal):
    # the mask is wrong, as a float16 network's ReLU is behind tiny weights, and is charged.
    underflowed = jnp.asarray([2.0**-13, 2.0**-13, 3.0], jnp.float16)
    value, bound = evaluate_with_bound(_relu_mask_of_product, underflowed)
    assert float(value) == 0.0 and _relu_mask_of_product(underflowed.astype(jnp.float64)) == 3.0
    assert float(bound) >= 3.0
    # A zero factor makes an exact zero: a kink the claim declares, judged between its
    # one-sided values (DESIGN.md principle 5), not loosened by a doubt.
    exact = jnp.asarray([0.0, 2.0**-13, 3.0], jnp.float16)
    value, bound = evaluate_with_bound(_relu_mask_of_product, exact)
    assert float(value) == 0.0 and float(bound) == 0.0


def _direction(x):
    return x / jnp.sqrt(jnp.sum(x**2))


def test_a_quotient_by_a_rounded_zero_is_unbounded_and_by_an_exact_zero_overflows():
    # 1e-4 is a float16 normal, its square (1e-8) is not even a subnormal: the norm is 0 with
    # an error of 1e-2, and the direction, truly (0.71, 0.71), has no float16 value.
    value, bound = evaluate_with_bound(_direction, jnp.asarray([1e-4, 1e-4], jnp.float16))
    assert np.isinf(np.asarray(value)).all() and (np.asarray(bound) == np.inf).all()
    # The same infinity carried on (times 2) stays unbounded, not an overflow.
    _, bound = evaluate_with_bound(lambda x: 2 * _direction(x), jnp.asarray([1e-4, 1e-4], jnp.float16))
    assert (np.asarray(bound) == np.inf).all()
    # Dividing by an exact zero (x - x) is the formula's own infinity: NaN, an overflow, failed.
    _, bound = evaluate_with_bound(lambda x: x / (x - x), jnp.asarray([1.0, 2.0], jnp.float16))
    assert np.isnan(np.asarray(bound)).all()
    # So is log of an exact 0, where log of an underflowed product is unbounded.
    _, exact = evaluate_with_bound(lambda x: jnp.log(x * 0), jnp.asarray([1.0], jnp.float16))
    _, rounded = evaluate_with_bound(lambda x: jnp.log(x * x), jnp.asarray([2.0**-13], jnp.float16))
    assert np.isnan(np.asarray(exact)).all() and (np.asarray(rounded) == np.inf).all()
