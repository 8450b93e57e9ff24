"""The backward pass of softmax attention, as FlashAttention prints it: a derivcheck catalog.

Tri Dao, Daniel Y. Fu, Stefano Ermon, Atri Rudra and Christopher Ré, "FlashAttention: Fast
and Memory-Efficient Exact Attention with IO-Awareness", NeurIPS 2022 (arXiv:2205.14135).
Algorithm 3 (the standard attention backward pass, S = QKᵀ, P = softmax(S), O = PV),
Appendix B.2 (the identity D_i = do_iᵀ o_i that lets the kernel skip P's row sums) and
Algorithm 4 (the FlashAttention backward pass: softmax scale τ, causal mask), whose per-block
updates add up to the whole-matrix formulas checked here. Dropout is left out (p_drop = 0).

Run it: ``derivcheck verify --catalog attention.py`` (copy this file anywhere).
"""

import jax
import jax.numpy as jnp

import derivcheck

DOCUMENT = derivcheck.Document(
    key="dao2022",
    seed="arXiv:2205.14135",
    title="FlashAttention: Fast and Memory-Efficient Exact Attention with IO-Awareness",
    author="Tri Dao, Daniel Y. Fu, Stefano Ermon, Atri Rudra and Christopher Ré",
    citation="NeurIPS 2022, Algorithms 3 and 4, Appendix B.2",
    url="https://arxiv.org/abs/2205.14135",
)


# The forward definitions (autodiff of these is the truth). Softmax is row-wise.
def softmax(s):
    return jax.nn.softmax(s, axis=-1)


def weighted_values(p, v):
    """O = PV."""
    return p @ v


def attend_scores(s, v):
    """O = softmax(S) V, as a function of the scores."""
    return softmax(s) @ v


def attention(q, k, v):
    """Algorithm 0: S = QKᵀ, P = softmax(S), O = PV."""
    return attend_scores(q @ k.T, v)


def scale(q):
    """τ, the softmax scaling of Algorithm 2: 1/√d for head dimension d."""
    return 1 / jnp.sqrt(q.shape[-1])


def causal_mask(s):
    """MASK(S) of Algorithm 2: entries above the diagonal set to −∞ (query i sees keys j ≤ i)."""
    n, m = s.shape
    return jnp.where(jnp.arange(m)[None, :] <= jnp.arange(n)[:, None], s, -jnp.inf)


def scaled_causal_attention(q, k, v):
    """Algorithm 2 without dropout: O = softmax(MASK(τ QKᵀ)) V."""
    return attend_scores(causal_mask(scale(q) * q @ k.T), v)


def scaled_attention(q, k, v):
    """Algorithm 2 without mask and dropout: O = softmax(τ QKᵀ) V."""
    return attend_scores(scale(q) * q @ k.T, v)


# Algorithm 3, line by line; do is dO = ∂φ/∂O.
def grad_values(q, k, v, do):
    r"""Line 1: $dV = P^\top dO$."""
    p = softmax(q @ k.T)
    return p.T @ do


def grad_probabilities(p, v, do):
    r"""Line 2: $dP = dO\,V^\top$."""
    return do @ v.T


def grad_scores(s, dp):
    r"""Line 3: $dS_{ij} = P_{ij}\big(dP_{ij} - \sum_l P_{il}\,dP_{il}\big)$."""
    p = softmax(s)
    return p * (dp - jnp.sum(p * dp, axis=-1, keepdims=True))


def _grad_scores_of(p, v, do):
    """dS from P and dO by the D_i identity: the step every kernel below shares."""
    o = p @ v
    d = jnp.sum(do * o, axis=-1, keepdims=True)  # D_i = do_iᵀ o_i
    return p * (do @ v.T - d)


def grad_scores_from_output(s, v, do):
    r"""Appendix B.2: $dS_{ij} = P_{ij}(dP_{ij} - D_i)$ with $D_i = do_i^\top o_i$."""
    return _grad_scores_of(softmax(s), v, do)


def grad_queries(q, k, v, do):
    r"""Line 4: $dQ = dS\,K$."""
    return _grad_scores_of(softmax(q @ k.T), v, do) @ k


def grad_keys(q, k, v, do):
    r"""Line 5: $dK = dS^\top Q$."""
    return _grad_scores_of(softmax(q @ k.T), v, do).T @ q


def _flash_backward(p, q, k, do, v):
    tau = scale(q)
    ds = _grad_scores_of(p, v, do)
    return tau * ds @ k, tau * ds.T @ q, p.T @ do


def flash_backward(q, k, v, do):
    r"""Algorithm 4 summed over blocks, no mask: $dQ = \tau\,dS\,K$, $dK = \tau\,dS^\top Q$,
    $dV = P^\top dO$, $dS_{ij} = P_{ij}(dP_{ij} - D_i)$, $P = \mathrm{softmax}(\tau QK^\top)$."""
    return _flash_backward(softmax(scale(q) * q @ k.T), q, k, do, v)


def flash_backward_causal(q, k, v, do):
    r"""Algorithm 4 summed over blocks, causal: as above with $P = \mathrm{softmax}(\mathrm{MASK}(\tau QK^\top))$;
    masked entries have $P_{ij} = 0$, hence $dS_{ij} = 0$."""
    return _flash_backward(softmax(causal_mask(scale(q) * q @ k.T)), q, k, do, v)


# Queries n × d, keys and values k × d and k × e; the causal case is square.
_DIMS = (("n", (1, 3, 4)), ("k", (1, 5, 2)), ("d", (1, 2, 4)), ("e", (1, 3, 2)))
_Q, _K = derivcheck.Arg("q", ("n", "d"), bound=4.0), derivcheck.Arg("k", ("k", "d"), bound=4.0)
_V = derivcheck.Arg("v", ("k", "e"), bound=10.0)
_DO = derivcheck.Arg("do", ("n", "e"), kind="direction")
ATTENTION = derivcheck.Domain((_Q, _K, _V, _DO), dims=_DIMS)
_SQUARE = (("n", (1, 3, 6)), ("d", (1, 2, 4)), ("e", (1, 3, 2)))
CAUSAL = derivcheck.Domain((_Q, derivcheck.Arg("k", ("n", "d"), bound=4.0), derivcheck.Arg("v", ("n", "e"), bound=10.0),
                            _DO), dims=_SQUARE)
SCORES = (derivcheck.Arg("s", ("n", "k"), kind="logits", bound=30.0),)


def _claim(id, location, statement, closed_form, reference, domain, checked_against, **more):
    return derivcheck.Claim(id=f"dao2022/{id}", document=DOCUMENT, location=location, statement=statement,
                            closed_form=closed_form, reference=reference, domain=domain,
                            checked_against=checked_against, **more)


CLAIMS = [
    _claim("alg3-line1-grad-values", "Algorithm 3, line 1", r"dV = P^\top dO",
           grad_values, derivcheck.autodiff(attention, "vjp", wrt="v"), ATTENTION,
           "jax.vjp of softmax(QKᵀ)V with respect to V"),
    _claim("alg3-line2-grad-probabilities", "Algorithm 3, line 2", r"dP = dO\,V^\top",
           grad_probabilities, derivcheck.autodiff(weighted_values, "vjp", wrt="p"),
           derivcheck.Domain((derivcheck.Arg("p", ("n", "k"), kind="simplex"), _V, _DO), dims=_DIMS),
           "jax.vjp of PV with respect to P"),
    _claim("alg3-line3-grad-scores", "Algorithm 3, line 3",
           r"dS_{ij} = P_{ij}\Big(dP_{ij} - \sum_l P_{il}\,dP_{il}\Big)",
           grad_scores, derivcheck.autodiff(softmax, "vjp", wrt="s"),
           derivcheck.Domain((*SCORES, derivcheck.Arg("dp", ("n", "k"), kind="direction")), dims=_DIMS),
           "jax.vjp of the row-wise softmax with respect to S"),
    _claim("appB2-grad-scores-rowsum-identity", "Appendix B.2, D_i = do_i^T o_i",
           r"dS_{ij} = P_{ij}(dP_{ij} - D_i),\quad D_i = do_i^\top o_i",
           grad_scores_from_output, derivcheck.autodiff(attend_scores, "vjp", wrt="s"),
           derivcheck.Domain((*SCORES, _V, _DO), dims=_DIMS),
           "jax.vjp of softmax(S)V with respect to S"),
    _claim("alg3-line4-grad-queries", "Algorithm 3, line 4", r"dQ = dS\,K",
           grad_queries, derivcheck.autodiff(attention, "vjp", wrt="q"), ATTENTION,
           "jax.vjp of softmax(QKᵀ)V with respect to Q", note="dS by the D_i identity, as the kernels compute it."),
    _claim("alg3-line5-grad-keys", "Algorithm 3, line 5", r"dK = dS^\top Q",
           grad_keys, derivcheck.autodiff(attention, "vjp", wrt="k"), ATTENTION,
           "jax.vjp of softmax(QKᵀ)V with respect to K", note="dS by the D_i identity, as the kernels compute it."),
    _claim("alg4-scaled-backward", "Algorithm 4, lines 16 to 22, summed over blocks",
           r"dQ = \tau\,dS\,K,\quad dK = \tau\,dS^\top Q,\quad dV = P^\top dO,\quad "
           r"P = \mathrm{softmax}(\tau QK^\top)",
           flash_backward, derivcheck.autodiff(scaled_attention, "vjp", wrt=("q", "k", "v")), ATTENTION,
           "jax.vjp of softmax(τQKᵀ)V with respect to Q, K and V, τ = 1/√d",
           note="Dropout left out (p_drop = 0). The per-block sums of Algorithm 4 are summed whole."),
    _claim("alg4-causal-backward", "Algorithm 4 with the causal MASK of Algorithm 2",
           r"dQ = \tau\,dS\,K,\quad dK = \tau\,dS^\top Q,\quad dV = P^\top dO,\quad "
           r"P = \mathrm{softmax}(\mathrm{MASK}(\tau QK^\top))",
           flash_backward_causal, derivcheck.autodiff(scaled_causal_attention, "vjp", wrt=("q", "k", "v")), CAUSAL,
           "jax.vjp of softmax(MASK(τQKᵀ))V with respect to Q, K and V, entries above the diagonal −∞",
           note="Dropout left out (p_drop = 0). Every row keeps its diagonal entry, so no row is all −∞."),
]
