r"""First-order error bounds of the matrix decompositions and triangular solves.

Each function takes the operation's float64 operands and results (the results as the
checked dtype computed them), the error each operand already carries (zero where exact),
and the result dtype's machine epsilon ``eps`` and smallest normal ``tiny``; it returns an
elementwise bound on each result's error. Two parts, added:

* the operation's own rounding, from its backward error in the literature: the computed
  result is the exact result of a perturbed problem, with the perturbation bounded
  componentwise (triangular solves, LU, Cholesky; Higham, *Accuracy and Stability of
  Numerical Algorithms*, 2nd ed., Thms 8.5, 9.3, 10.3) or normwise (symmetric eigenproblem,
  SVD, Householder QR; Higham Thm 19.4, Demmel, *Applied Numerical Linear Algebra*, §5.2);
* the carried error, through the operation's first-order perturbation theory, applied to
  the sum of both perturbations. Absolute values are taken inside every product, so each
  bound holds whatever the signs of the perturbation.

The perturbation theory of eigenvectors and singular vectors divides by the gaps between
eigenvalues (singular values): at a repeated one the bound is infinite and a point there
is undecided, which is the truth: the vectors are not determined there. A pivoted LU is
bounded for its pivot order at the point (a change of pivot is a kink, not a rounding).

The backward errors are charged with :math:`\gamma_k = k\,\epsilon`, twice the unit
roundoff :math:`k u` of the literature's first-order bounds.
"""

from __future__ import annotations

import jax.numpy as jnp
from jax import lax

__all__ = [
    "cholesky_error",
    "eigh_error",
    "lu_error",
    "qr_error",
    "svd_error",
    "triangular_solve_error",
]


def _mm(a, b):
    return jnp.matmul(a, b, precision=lax.Precision.HIGHEST)


def _t(x):
    return jnp.swapaxes(x, -1, -2)


def _eye(n: int, like) -> jnp.ndarray:
    return jnp.broadcast_to(jnp.eye(n, dtype=like.dtype), (*like.shape[:-2], n, n))


def _or_zero(error, like):
    return jnp.zeros_like(like) if error is None else error


def _inverse(t, *, lower: bool, unit_diagonal: bool = False):
    """The inverse of a triangular matrix (float64)."""
    return lax.linalg.triangular_solve(t, _eye(t.shape[-1], t), left_side=True, lower=lower,
                                       unit_diagonal=unit_diagonal)


def _symmetric(e, lower: bool):
    """The symmetric error of a matrix of which only one triangle is read."""
    part = jnp.tril(e) if lower else jnp.triu(e)
    return part + _t(jnp.tril(part, -1) if lower else jnp.triu(part, 1))


def triangular_solve_error(a, b, x, ea, eb, *, left_side: bool, lower: bool, transpose_a: bool,
                           unit_diagonal: bool, eps: float, tiny: float):
    r"""Error of :math:`x = \mathrm{op}(T)^{-1} b` (``left_side``) or :math:`b\,\mathrm{op}(T)^{-1}`.

    Substitution in any order solves :math:`(T + \Delta T)\hat x = b` with
    :math:`|\Delta T| \le \gamma_m |T|` (Higham Thm 8.5), so, to first order,

    .. math::
        |\hat x - x| \le |T^{-1}|\,\big(e_b + (e_T + \gamma_m |T|)\,|\hat x|\big).

    Only the triangle the solve reads counts; a unit diagonal is exact.
    """
    m = a.shape[-1]
    eye = _eye(m, a)
    tri = jnp.tril if lower else jnp.triu
    abs_t, err_t = tri(jnp.abs(a)), tri(_or_zero(ea, a))
    if unit_diagonal:
        abs_t = abs_t * (1 - eye) + eye
        err_t = err_t * (1 - eye)
    inverse = lax.linalg.triangular_solve(a, eye, left_side=True, lower=lower, transpose_a=transpose_a,
                                          unit_diagonal=unit_diagonal)
    if transpose_a:
        abs_t, err_t = _t(abs_t), _t(err_t)
    perturbation = err_t + m * eps * abs_t
    abs_inv, abs_x, err_b = jnp.abs(inverse), jnp.abs(x), _or_zero(eb, b)
    if left_side:
        return _mm(abs_inv, err_b + _mm(perturbation, abs_x)) + m * tiny
    return _mm(err_b + _mm(abs_x, perturbation), abs_inv) + m * tiny


def cholesky_error(a, factor, ea, *, eps: float, tiny: float):
    r"""Error of the Cholesky factor :math:`L` of :math:`A = L L^T`.

    The computed factor is exact for :math:`A + \Delta A` with
    :math:`|\Delta A| \le \gamma_{n+1} |L||L^T|` (Higham Thm 10.3); a perturbation
    :math:`\delta A` moves the factor by :math:`L\,\Phi(L^{-1}\delta A\,L^{-T})`, with
    :math:`\Phi` the strictly lower triangle plus half the diagonal. Hence

    .. math::
        |\delta L| \le |L|\,\Phi\big(|L^{-1}|\,(\gamma_{n+1}|L||L^T| + e_A)\,|L^{-T}|\big).

    The carried error is taken symmetric, from both triangles (a bound on either).
    """
    n = a.shape[-1]
    lower = jnp.tril(factor)
    abs_l, abs_inv = jnp.abs(lower), jnp.abs(_inverse(lower, lower=True))
    err_a = _or_zero(ea, a)
    perturbation = (n + 1) * eps * _mm(abs_l, _t(abs_l)) + jnp.maximum(err_a, _t(err_a))
    inner = _mm(_mm(abs_inv, perturbation), _t(abs_inv))
    phi = jnp.tril(inner, -1) + 0.5 * inner * _eye(n, a)
    return jnp.tril(_mm(abs_l, phi) + (n + 1) * tiny)


def lu_error(packed, permutation, ea, *, eps: float, tiny: float):
    r"""Error of the packed LU factors of :math:`PA = LU` (unit lower :math:`L`, square).

    The computed factors are exact for :math:`PA + \Delta A` with
    :math:`|\Delta A| \le \gamma_n |L||U|` (Higham Thm 9.3). A perturbation :math:`\delta`
    of :math:`PA` gives :math:`M = L^{-1}\delta\,U^{-1}`, :math:`\delta L = L\,\mathrm{stril}(M)`
    and :math:`\delta U = \mathrm{triu}(M)\,U`, bounded with :math:`|M| \le |L^{-1}||\delta||U^{-1}|`.
    """
    n = packed.shape[-1]
    eye = _eye(n, packed)
    lower = jnp.tril(packed, -1) + eye
    upper = jnp.triu(packed)
    abs_l, abs_u = jnp.abs(lower), jnp.abs(upper)
    carried = jnp.zeros_like(packed) if ea is None else jnp.take_along_axis(ea, permutation[..., :, None], axis=-2)
    perturbation = n * eps * _mm(abs_l, abs_u) + carried
    inv_l = jnp.abs(_inverse(lower, lower=True, unit_diagonal=True))
    inv_u = jnp.abs(_inverse(upper, lower=False))
    m = _mm(_mm(inv_l, perturbation), inv_u)
    return jnp.tril(_mm(abs_l, jnp.tril(m, -1)), -1) + jnp.triu(_mm(jnp.triu(m), abs_u)) + n * tiny


def _frobenius(a):
    return jnp.sqrt(jnp.sum(a * a, axis=(-2, -1), keepdims=True))


def _through_gaps(abs_vectors, weights, values):
    r"""Column :math:`i`: :math:`\sum_{j \ne i} |x_j|\,W_{ji} / |v_i - v_j|`, a vector's move
    from the others' couplings ``weights``; infinite where ``values`` repeat ``v_i``."""
    n = values.shape[-1]
    gaps = jnp.abs(values[..., None, :] - values[..., :, None])
    off = jnp.broadcast_to(~jnp.eye(n, dtype=bool), gaps.shape)
    repeated = jnp.any(off & (gaps == 0), axis=-2, keepdims=True)
    scaled = jnp.where(off & (gaps > 0), weights / jnp.where(gaps > 0, gaps, 1.0), 0.0)
    return jnp.where(repeated, jnp.inf, _mm(abs_vectors, scaled))


def eigh_error(a, v, w, ea, *, lower: bool, eps: float, tiny: float):
    r"""Errors of the eigenvectors ``v`` (columns) and eigenvalues ``w`` of a symmetric matrix.

    A backward-stable eigensolver returns the exact decomposition of :math:`A + \Delta A`,
    :math:`\|\Delta A\|_2 \le \gamma_{n^2} \|A\|_F`, with columns orthonormal to
    :math:`\gamma_{n^2}` (the Householder tridiagonalization's backward error, Higham
    Thm 19.4, dominates). With :math:`C = |V|^T e_A |V| + \gamma_{n^2} \|A\|_F` (a bound on every
    :math:`|v_j^T \delta A\, v_i|`), to first order

    .. math::
        |\delta\lambda_i| \le C_{ii}, \qquad
        |\delta v_i| \le \sum_{j \ne i} |v_j|\,\frac{C_{ji}}{|\lambda_i - \lambda_j|} + \gamma_{n^2}.
    """
    n = a.shape[-1]
    gamma = n * n * eps
    read = _symmetric(a, lower)
    backward = gamma * _frobenius(read) + n * tiny
    abs_v = jnp.abs(v)
    coupling = _mm(_mm(_t(abs_v), _symmetric(_or_zero(ea, a), lower)), abs_v) + backward
    err_w = jnp.diagonal(coupling, axis1=-2, axis2=-1)
    err_v = _through_gaps(abs_v, coupling, w) + gamma
    return err_v, err_w


def svd_error(a, s, u, vt, ea, *, eps: float, tiny: float):
    r"""Errors of the singular values ``s`` and (for a square matrix) vectors ``u``, ``vt``.

    The computed SVD is exact for :math:`A + \Delta A`, :math:`\|\Delta A\|_2 \le \gamma_{mn} \|A\|_F`
    (the Householder bidiagonalization's backward error, Higham Thm 19.4, dominates), with
    orthonormal vectors to :math:`\gamma_{mn}`. With
    :math:`P \le |U|^T e_A |V| + \gamma_{mn} \|A\|_F` bounding :math:`|U^T\delta A\,V|`:
    :math:`|\delta\sigma_i| \le P_{ii}`, and (square :math:`A`) :math:`U^T\delta U` and
    :math:`V^T\delta V` have off-diagonal entries
    :math:`(\sigma_j P_{ij} + \sigma_i P_{ji}) / |\sigma_j^2 - \sigma_i^2|` and
    :math:`(\sigma_i P_{ij} + \sigma_j P_{ji}) / |\sigma_j^2 - \sigma_i^2|`. ``u`` and
    ``vt`` may be None (singular values only).
    """
    m, n = a.shape[-2:]
    gamma = m * n * eps
    backward = gamma * _frobenius(a) + max(m, n) * tiny
    k = s.shape[-1]
    abs_u = jnp.abs(u[..., :, :k]) if u is not None else None
    abs_v = jnp.abs(_t(vt)[..., :, :k]) if vt is not None else None
    err_a = _or_zero(ea, a)
    if abs_u is None:  # the singular values only: each moves by at most the 2-norm of the change
        return jnp.broadcast_to((_frobenius(err_a) + backward)[..., 0], s.shape), None, None
    coupling = _mm(_mm(_t(abs_u), err_a), abs_v) + backward
    err_s = jnp.diagonal(coupling, axis1=-2, axis2=-1)
    si, sj = s[..., :, None], s[..., None, :]
    err_u = _through_gaps(abs_u, sj * coupling + si * _t(coupling), s * s) + gamma
    err_vt = _t(_through_gaps(abs_v, si * coupling + sj * _t(coupling), s * s)) + gamma
    return err_s, err_u, err_vt


def qr_error(a, q, r, ea, *, eps: float, tiny: float):
    r"""Errors of the reduced QR factors of an :math:`m \times n` matrix, :math:`m \ge n`.

    Householder QR is exact for :math:`A + \Delta A` with
    :math:`\|\Delta a_j\|_2 \le \gamma_{mn}\|a_j\|_2` per column, and the explicitly formed
    :math:`Q` is orthonormal to :math:`\gamma_{mn}` (Higham Thm 19.4). For a perturbation
    :math:`D \ge |\delta A|`: :math:`|M| \le |Q|^T D |R^{-1}|`, :math:`|\Omega| \le
    \mathrm{stril}|M| + \mathrm{stril}|M|^T`, :math:`|\delta R| \le \mathrm{triu}((|M| + |\Omega|)|R|)`
    and :math:`|\delta Q| \le D|R^{-1}| + |Q|(|M| + |\Omega|)`.
    """
    m, n = a.shape[-2:]
    gamma = m * n * eps
    columns = jnp.sqrt(jnp.sum(a * a, axis=-2, keepdims=True))
    perturbation = gamma * columns + tiny + _or_zero(ea, a)
    abs_q = jnp.abs(q)
    abs_inv = jnp.abs(_inverse(jnp.triu(r), lower=False))
    spread = _mm(perturbation, abs_inv)
    inner = _mm(_t(abs_q), spread)
    omega = jnp.tril(inner, -1) + _t(jnp.tril(inner, -1))
    err_r = jnp.triu(_mm(inner + omega, jnp.abs(r)))
    err_q = spread + _mm(abs_q, inner + omega) + gamma
    return err_q, err_r
