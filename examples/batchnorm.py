"""The backward pass of batch normalization, as Ioffe and Szegedy print it: a derivcheck catalog.

Sergey Ioffe and Christian Szegedy, "Batch Normalization: Accelerating Deep Network Training
by Reducing Internal Covariate Shift", ICML 2015 (arXiv:1502.03167), §3.1: Algorithm 1 (the
Batch Normalizing Transform over a mini-batch B = {x_1..m}) and the six chain-rule lines
after it. Training mode: the mean and variance are the mini-batch's. One activation in the
paper; here every column of ``x`` (shape m × d) is one activation, normalised over the m rows.

Run it: ``derivcheck verify --catalog batchnorm.py`` (copy this file anywhere).
"""

import jax.numpy as jnp

import derivcheck

DOCUMENT = derivcheck.Document(
    key="ioffe2015",
    seed="arXiv:1502.03167",
    title="Batch Normalization: Accelerating Deep Network Training by Reducing Internal Covariate Shift",
    author="Sergey Ioffe and Christian Szegedy",
    citation="S. Ioffe and C. Szegedy, ICML 2015, §3.1 and Algorithm 1",
    url="https://arxiv.org/abs/1502.03167",
)

EPS = 1e-5  # the paper's ε: "a constant added to the mini-batch variance for numerical stability"


# Algorithm 1, the forward definitions (autodiff of these is the truth).
def mean(x):
    r"""$\mu_B = \frac{1}{m}\sum_i x_i$."""
    return jnp.mean(x, axis=0)


def variance(x, mu):
    r"""$\sigma_B^2 = \frac{1}{m}\sum_i (x_i - \mu_B)^2$."""
    return jnp.mean((x - mu) ** 2, axis=0)


def normalize(x, mu, var):
    r"""$\hat x_i = (x_i - \mu_B) / \sqrt{\sigma_B^2 + \epsilon}$."""
    return (x - mu) / jnp.sqrt(var + EPS)


def scale_and_shift(xhat, gamma, beta):
    r"""$y_i = \gamma \hat x_i + \beta$."""
    return gamma * xhat + beta


def normalize_about(x, mu):
    """x̂ as a function of x and μ, σ² computed from both: the graph the paper's ∂ℓ/∂μ_B walks."""
    return normalize(x, mu, variance(x, mu))


def normalize_batch(x):
    """x̂ as a function of x alone, μ and σ² the mini-batch's: the graph of ∂ℓ/∂x_i."""
    mu = mean(x)
    return normalize(x, mu, variance(x, mu))


def batch_norm(x, gamma, beta):
    r"""$y_i = \mathrm{BN}_{\gamma,\beta}(x_i)$, Algorithm 1 whole."""
    return scale_and_shift(normalize_batch(x), gamma, beta)


# §3.1, the six lines "we need to backpropagate the gradient of loss ℓ through this
# transformation", in order; dy is ∂ℓ/∂y_i, dxhat is ∂ℓ/∂x̂_i.
def grad_xhat(xhat, gamma, beta, dy):
    r"""$\frac{\partial\ell}{\partial\hat x_i} = \frac{\partial\ell}{\partial y_i}\cdot\gamma$."""
    return dy * gamma


def grad_variance(x, mu, var, dxhat):
    r"""$\frac{\partial\ell}{\partial\sigma_B^2} = \sum_i \frac{\partial\ell}{\partial\hat x_i}(x_i-\mu_B)
    \cdot\frac{-1}{2}(\sigma_B^2+\epsilon)^{-3/2}$."""
    return jnp.sum(dxhat * (x - mu), axis=0) * -0.5 * (var + EPS) ** -1.5


def grad_mean(x, mu, dxhat):
    r"""$\frac{\partial\ell}{\partial\mu_B} = \Big(\sum_i \frac{\partial\ell}{\partial\hat x_i}
    \cdot\frac{-1}{\sqrt{\sigma_B^2+\epsilon}}\Big) + \frac{\partial\ell}{\partial\sigma_B^2}
    \cdot\frac{\sum_i -2(x_i-\mu_B)}{m}$."""
    m = x.shape[0]
    var = variance(x, mu)
    dvar = grad_variance(x, mu, var, dxhat)
    return jnp.sum(dxhat * -1 / jnp.sqrt(var + EPS), axis=0) + dvar * jnp.sum(-2 * (x - mu), axis=0) / m


def grad_input(x, dxhat):
    r"""$\frac{\partial\ell}{\partial x_i} = \frac{\partial\ell}{\partial\hat x_i}\cdot
    \frac{1}{\sqrt{\sigma_B^2+\epsilon}} + \frac{\partial\ell}{\partial\sigma_B^2}\cdot
    \frac{2(x_i-\mu_B)}{m} + \frac{\partial\ell}{\partial\mu_B}\cdot\frac{1}{m}$."""
    m = x.shape[0]
    mu = mean(x)
    var = variance(x, mu)
    dvar = grad_variance(x, mu, var, dxhat)
    dmu = grad_mean(x, mu, dxhat)
    return dxhat / jnp.sqrt(var + EPS) + dvar * 2 * (x - mu) / m + dmu / m


def grad_gamma(x, gamma, beta, dy):
    r"""$\frac{\partial\ell}{\partial\gamma} = \sum_i \frac{\partial\ell}{\partial y_i}\cdot\hat x_i$."""
    return jnp.sum(dy * normalize_batch(x), axis=0)


def grad_beta(x, gamma, beta, dy):
    r"""$\frac{\partial\ell}{\partial\beta} = \sum_i \frac{\partial\ell}{\partial y_i}$."""
    return jnp.sum(dy, axis=0)


def grad_input_compact(x, gamma, beta, dy):
    r"""The one-line ∂ℓ/∂x that implementations use (not printed in the paper):
    $\frac{\partial\ell}{\partial x_i} = \frac{\gamma}{m\sqrt{\sigma_B^2+\epsilon}}
    \Big(m\,\frac{\partial\ell}{\partial y_i} - \sum_j\frac{\partial\ell}{\partial y_j}
    - \hat x_i\sum_j \frac{\partial\ell}{\partial y_j}\hat x_j\Big)$."""
    m = x.shape[0]
    xhat = normalize_batch(x)
    inv_std = 1 / jnp.sqrt(variance(x, mean(x)) + EPS)
    return gamma * inv_std / m * (m * dy - jnp.sum(dy, axis=0) - xhat * jnp.sum(dy * xhat, axis=0))


# Inputs: a mini-batch of m rows, d activations; m = 1 (variance 0, only ε left) included.
_DIMS = (("m", (1, 4, 16)), ("d", (1, 3, 2)))
_X = derivcheck.Arg("x", ("m", "d"), bound=10.0)
_MU = derivcheck.Arg("mu", ("d",), bound=10.0)
_VAR = derivcheck.Arg("var", ("d",), kind="nonnegative", bound=100.0)
_PARAMS = (derivcheck.Arg("gamma", ("d",), bound=10.0), derivcheck.Arg("beta", ("d",), bound=10.0))
_DY = derivcheck.Arg("dy", ("m", "d"), kind="direction")
_DXHAT = derivcheck.Arg("dxhat", ("m", "d"), kind="direction")

LAYER = derivcheck.Domain((_X, *_PARAMS, _DY), dims=_DIMS)


def _claim(id, location, statement, closed_form, reference, domain, checked_against, **more):
    return derivcheck.Claim(id=f"ioffe2015/{id}", document=DOCUMENT, location=location, statement=statement,
                            closed_form=closed_form, reference=reference, domain=domain,
                            checked_against=checked_against, **more)


CLAIMS = [
    _claim("sec3.1-grad-normalized-input", "§3.1, backward, line 1",
           r"\frac{\partial\ell}{\partial\hat x_i} = \frac{\partial\ell}{\partial y_i}\cdot\gamma",
           grad_xhat, derivcheck.autodiff(scale_and_shift, "vjp", wrt="xhat"),
           derivcheck.Domain((derivcheck.Arg("xhat", ("m", "d"), bound=10.0), *_PARAMS, _DY), dims=_DIMS),
           "jax.vjp of y = γ x̂ + β with respect to x̂"),
    _claim("sec3.1-grad-variance", "§3.1, backward, line 2",
           r"\frac{\partial\ell}{\partial\sigma_B^2} = \sum_{i=1}^m \frac{\partial\ell}{\partial\hat x_i}"
           r"\cdot(x_i-\mu_B)\cdot\frac{-1}{2}(\sigma_B^2+\epsilon)^{-3/2}",
           grad_variance, derivcheck.autodiff(normalize, "vjp", wrt="var"),
           derivcheck.Domain((_X, _MU, _VAR, _DXHAT), dims=_DIMS),
           "jax.vjp of x̂ = (x − μ)/√(σ² + ε) with respect to σ², x and μ held",
           note="σ² and μ are drawn independently of x: the line is a partial derivative, true for any of them."),
    _claim("sec3.1-grad-mean", "§3.1, backward, line 3",
           r"\frac{\partial\ell}{\partial\mu_B} = \Big(\sum_{i=1}^m \frac{\partial\ell}{\partial\hat x_i}"
           r"\cdot\frac{-1}{\sqrt{\sigma_B^2+\epsilon}}\Big) + \frac{\partial\ell}{\partial\sigma_B^2}"
           r"\cdot\frac{\sum_{i=1}^m -2(x_i-\mu_B)}{m}",
           grad_mean, derivcheck.autodiff(normalize_about, "vjp", wrt="mu"),
           derivcheck.Domain((_X, _MU, _DXHAT), dims=_DIMS),
           "jax.vjp with respect to μ of x̂, σ² computed from x and μ",
           note="μ is drawn independently of x, so the σ² term, zero at the batch mean, is checked too."),
    _claim("sec3.1-grad-input", "§3.1, backward, line 4",
           r"\frac{\partial\ell}{\partial x_i} = \frac{\partial\ell}{\partial\hat x_i}\cdot"
           r"\frac{1}{\sqrt{\sigma_B^2+\epsilon}} + \frac{\partial\ell}{\partial\sigma_B^2}\cdot"
           r"\frac{2(x_i-\mu_B)}{m} + \frac{\partial\ell}{\partial\mu_B}\cdot\frac{1}{m}",
           grad_input, derivcheck.autodiff(normalize_batch, "vjp", wrt="x"),
           derivcheck.Domain((_X, _DXHAT), dims=_DIMS),
           "jax.vjp with respect to x of x̂, μ and σ² the mini-batch's"),
    _claim("sec3.1-grad-gamma", "§3.1, backward, line 5",
           r"\frac{\partial\ell}{\partial\gamma} = \sum_{i=1}^m \frac{\partial\ell}{\partial y_i}\cdot\hat x_i",
           grad_gamma, derivcheck.autodiff(batch_norm, "vjp", wrt="gamma"), LAYER,
           "jax.vjp of BN_γ,β(x) with respect to γ"),
    _claim("sec3.1-grad-beta", "§3.1, backward, line 6",
           r"\frac{\partial\ell}{\partial\beta} = \sum_{i=1}^m \frac{\partial\ell}{\partial y_i}",
           grad_beta, derivcheck.autodiff(batch_norm, "vjp", wrt="beta"), LAYER,
           "jax.vjp of BN_γ,β(x) with respect to β"),
    _claim("compact-grad-input", "not printed: the compact ∂ℓ/∂x of implementations",
           r"\frac{\partial\ell}{\partial x_i} = \frac{\gamma}{m\sqrt{\sigma_B^2+\epsilon}}\Big(m\frac{\partial\ell}"
           r"{\partial y_i} - \sum_j\frac{\partial\ell}{\partial y_j} - \hat x_i\sum_j\frac{\partial\ell}"
           r"{\partial y_j}\hat x_j\Big)",
           grad_input_compact, derivcheck.autodiff(batch_norm, "vjp", wrt="x"), LAYER,
           "jax.vjp of BN_γ,β(x) with respect to x",
           note="Lines 1 to 4 collapsed into one, with Σ_j ∂ℓ/∂x̂_j (x_j − μ) = √(σ²+ε) Σ_j ∂ℓ/∂x̂_j x̂_j."),
]
