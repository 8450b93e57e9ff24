r"""Nikhil Challa, "Math for Understanding Deep Neural Networks" (December 15, 2022).

Seed ``001_557874b8e264224f.txt``. One sample at a time (SGD), as the derivation does after
Eq. (1). Layer $n$ accumulates $a_j^n = \sum_{j'} w_{j',j}^n x_{j'}^{n-1} + b_j^n$ (8): the
weight matrix ``W`` is indexed ``[previous node, current node]``, so $a^n = W^{nT} x^{n-1} + b^n$.
Hidden layers use ReLU, the last layer none; $y$ is the softmax of the last accumulation and
$\hat{y}$ the target; $L = -\sum_j \hat{y}_j \log y_j$ (2).
"""

import jax.numpy as jnp
import numpy as np

from derivations._common import softmax  # Eq. (4), over the last axis


def _delta(n, dtype):
    return jnp.eye(n, dtype=dtype)


# --- Eqs. (1)-(6): loss and softmax -----------------------------------------------------


def batch_loss_gradient(A, Y_hat):
    r"""Eq. (1) with its constants: $\frac{\partial L}{\partial a_{j,k}} = \frac{y_{j,k} - \hat{y}_{j,k}}{S M}$.

    ``A`` and ``Y_hat`` are ``(S, M)``: sample ``k`` in row ``k``. Eq. (1)'s inner sum is over
    $j$ with the sample index written $k$ where the outer sum's $i$ is meant (transcribed as
    meant); by Eq. (17) each term's gradient is $y - \hat{y}$, scaled by $1/(SM)$.

    References: Challa, Eqs. (1) and (17).
    """
    S, M = A.shape
    return (softmax(A) - Y_hat) / (S * M)


def softmax_derivative(a):
    r"""Eq. (5): $\frac{\partial y_{j_1}}{\partial a_{j_2}} = y_{j_2} (\delta_{j_2, j_1} - y_{j_1})$, row $j_1$.

    References: Challa, Eq. (5).
    """
    y = softmax(a)
    return y[None, :] * (_delta(a.shape[0], a.dtype) - y[:, None])


def softmax_derivative_cases(a):
    r"""Eq. (6): $y_{j_2}(1 - y_{j_1})$ if $j_1 = j_2$, $y_{j_2}(-y_{j_1})$ otherwise.

    References: Challa, Eq. (6).
    """
    y = softmax(a)
    same = jnp.eye(a.shape[0], dtype=bool)
    return jnp.where(same, y[None, :] * (1 - y[:, None]), y[None, :] * (-y[:, None]))


# --- Eqs. (7)-(10): accumulation ------------------------------------------------------------


def accumulation_weight_derivative(x_prev, W, b):
    r"""Eq. (9): $\frac{\partial a_j^n}{\partial w_{j',j}^n} = x_{j'}^{n-1}$, as the matrix ``[j', j]``.

    References: Challa, Eqs. (8)-(9).
    """
    return jnp.broadcast_to(x_prev[:, None], W.shape)


def accumulation_bias_derivative(x_prev, W, b):
    r"""Eq. (10): $\frac{\partial a_j^n}{\partial b_j^n} = 1$ for every $j$.

    References: Challa, Eq. (10).
    """
    return jnp.ones_like(b)


def accumulation_bias_derivative_applied(x_prev, W, b, v):
    r"""Eq. (10) applied to a direction: $\frac{\partial a_j^n}{\partial b_j^n} v_j = v_j$. The
    constant 1 is checked through what it does to a drawn ``v`` (DESIGN.md principle 9).

    References: Challa, Eq. (10).
    """
    return accumulation_bias_derivative(x_prev, W, b) * v


# --- Eqs. (11)-(17): the last layer's dA -------------------------------------------------


def loss_output_derivative_as_printed(y, y_hat):
    r"""Eq. (11) as printed: $\frac{\partial L}{\partial y} = -\sum_{j=1}^M \frac{\hat{y}_j}{y_j}$,
    one number, given for every component of $y$.

    References: Challa, Eq. (11).
    """
    return jnp.broadcast_to(-jnp.sum(y_hat / y), y.shape)


def loss_output_derivative(y, y_hat):
    r"""Eq. (11) corrected: $\frac{\partial L}{\partial y_j} = -\frac{\hat{y}_j}{y_j}$, one per component.

    References: Challa, Eq. (11), and its use in Eq. (12).
    """
    return -y_hat / y


def chain_rule_sum(a, y_hat):
    r"""Eq. (12), for every component $c$ (the document writes $c = 1$):
    $\frac{\partial L}{\partial a_c} = -\sum_{j=1}^M \frac{\hat{y}_j}{y_j} \cdot \left(y_c (\delta_{c,j} - y_j)\right)$.

    References: Challa, Eq. (12).
    """
    y = softmax(a)
    terms = (y_hat / y)[None, :] * (y[:, None] * (_delta(a.shape[0], a.dtype) - y[None, :]))
    return -jnp.sum(terms, axis=1)


def chain_rule_split(a, y_hat):
    r"""Eq. (13): $-\frac{\hat{y}_c}{y_c}(y_c(1 - y_c)) - \sum_{j \ne c} \frac{\hat{y}_j}{y_j}(y_c(-y_j))$.

    References: Challa, Eq. (13).
    """
    y = softmax(a)
    off = ~jnp.eye(a.shape[0], dtype=bool)
    others = jnp.sum(jnp.where(off, (y_hat / y)[None, :] * (y[:, None] * (-y[None, :])), 0.0), axis=1)
    return -(y_hat / y) * (y * (1 - y)) - others


def chain_rule_expanded(a, y_hat):
    r"""Eq. (14): $-\hat{y}_c + \hat{y}_c y_c + \sum_{j \ne c} \hat{y}_j y_c$.

    References: Challa, Eq. (14).
    """
    y = softmax(a)
    others = jnp.sum(y_hat) - y_hat
    return -y_hat + y_hat * y + others * y


def chain_rule_collected(a, y_hat):
    r"""Eq. (15): $y_c \sum_{j=1}^M \hat{y}_j - \hat{y}_c$.

    References: Challa, Eq. (15).
    """
    return softmax(a) * jnp.sum(y_hat) - y_hat


def last_layer_delta(a, y_hat):
    r"""Eqs. (16)-(17): $\frac{\partial L}{\partial a_j^N} = y_j - \hat{y}_j = dA_j^N$.

    References: Challa, Eqs. (16)-(17).
    """
    return softmax(a) - y_hat


def last_layer_weight_gradient(x_prev, W, b, dA):
    r"""Eq. (18): $\frac{\partial L}{\partial w_{i,j}^N} = dA_j^N \cdot x_i^{N-1}$, the matrix ``[i, j]``.

    References: Challa, Eq. (18).
    """
    return x_prev[:, None] * dA[None, :]


def last_layer_bias_gradient(x_prev, W, b, dA):
    r"""Eq. (19): $\frac{\partial L}{\partial b_j^N} = dA_j^N$.

    References: Challa, Eq. (19).
    """
    return dA


# --- Eqs. (20)-(21) and the deeper layers --------------------------------------------------


def relu_derivative(a):
    r"""Eq. (21): $\frac{\partial x_j^n}{\partial a_j^n} = 1$ if $a_j > 0$, $0$ if $a_j \le 0$.

    References: Challa, Eqs. (20)-(21).
    """
    return jnp.where(a > 0, 1.0, 0.0).astype(a.dtype)


def clubbed_term(x_prev, W, b, dA):
    r"""The clubbed term: $\frac{\partial L}{\partial x_i^{N-1}} = \sum_j dA_j^N \cdot w_{i,j}^N$
    (the document writes $i = 1$ and two terms).

    References: Challa, "Digging deeper into clubbed term".
    """
    return W @ dA


def _deeper_layer(x_prev, W, b, W_next, dA_next):
    """Layer N-1 from its input x^{N-2}: a^{N-1}, x^{N-1} and dA^{N-1} from the last layer's dA^N."""
    a = W.T @ x_prev + b  # (8)
    return a, jnp.maximum(a, 0), (W_next @ dA_next) * relu_derivative(a)  # (20), the clubbed term, (21)


def deeper_weight_gradient_as_printed(x_prev, W, b, W_next, b_next, dA_next):
    r"""As printed: $\frac{\partial L}{\partial w_{1,1}^{N-1}} = (dA_1^N w_{1,1}^N + dA_2^N w_{1,2}^N)
    (0 \text{ or } 1)\, x_1^{N-1} = dA_1^{N-1} x_1^{N-1}$, summed over every node of layer $N$;
    $x_1^{N-1}$ is node 1's own output. ``x_prev`` is $x^{N-2}$, ``W`` $w^{N-1}$, ``W_next`` $w^N$.

    References: Challa, "Gradient for weight" of the deeper layer.
    """
    _, x, dA = _deeper_layer(x_prev, W, b, W_next, dA_next)
    return dA[0] * x[0]


def deeper_weight_gradient(x_prev, W, b, W_next, b_next, dA_next):
    r"""Corrected: $\frac{\partial L}{\partial w_{1,1}^{N-1}} = dA_1^{N-1} x_1^{N-2}$, the input of the weight.

    References: Challa, "Gradient for weight" of the deeper layer, with Eq. (18)'s superscripts.
    """
    _, _, dA = _deeper_layer(x_prev, W, b, W_next, dA_next)
    return dA[0] * x_prev[0]


def deeper_bias_gradient_as_printed(x_prev, W, b, W_next, b_next, dA_next):
    r"""As printed: $\frac{\partial L}{\partial b_1^N} = \frac{\partial L}{\partial a_1^{N-1}}
    \frac{\partial a_1^{N-1}}{\partial b_1^N} = dA_1^{N-1}$, the gradient of the last layer's bias.

    The right-hand side is the corrected one's: the slip is the left-hand side's superscript.

    References: Challa, "Similarly gradient for bias" of the deeper layer.
    """
    return deeper_bias_gradient(x_prev, W, b, W_next, b_next, dA_next)


def deeper_bias_gradient(x_prev, W, b, W_next, b_next, dA_next):
    r"""Corrected: $\frac{\partial L}{\partial b_1^{N-1}} = dA_1^{N-1}$.

    References: Challa, "Similarly gradient for bias" of the deeper layer.
    """
    return _deeper_layer(x_prev, W, b, W_next, dA_next)[2][0]


def _forward(x1, W2, b2, W3, b3, W4, b4):
    a2 = W2.T @ x1 + b2  # (8)
    x2 = jnp.maximum(a2, 0)  # (20)
    a3 = W3.T @ x2 + b3
    x3 = jnp.maximum(a3, 0)
    a4 = W4.T @ x3 + b4  # last layer: no activation
    return (a2, x2), (a3, x3), a4


def network_gradients(x1, W2, b2, W3, b3, W4, b4, y_hat, *, skip_inactive=False):
    r"""The general algorithm for every layer, on input → ReLU → ReLU → softmax:
    $\frac{\partial L}{\partial w_{i,j}^n} = dA_j^n \cdot x_i^{n-1}$ with
    $dA_j^n = \left(\sum_{i'} dA_{i'}^{n+1} w_{j,i'}^{n+1}\right) \cdot (0 \text{ or } 1)$, and
    $\frac{\partial L}{\partial b_j^n} = dA_j^n$; the last layer by Eqs. (17)-(19).

    With ``skip_inactive``, the "neat trick": $dA_j^n$ is set to 0 without computing the
    sum where $a_j^n \le 0$.

    References: Challa, Eqs. (17)-(21) and "Generalizing the algorithm for all layers".
    """
    (a2, x2), (a3, x3), a4 = _forward(x1, W2, b2, W3, b3, W4, b4)
    dA4 = last_layer_delta(a4, y_hat)  # (17)

    def hidden_dA(a, W_next, dA_next):
        if skip_inactive:
            return jnp.where(a > 0, W_next @ dA_next, 0.0).astype(a.dtype)
        return (W_next @ dA_next) * relu_derivative(a)

    dA3 = hidden_dA(a3, W4, dA4)
    dA2 = hidden_dA(a2, W3, dA3)
    outer = last_layer_weight_gradient  # dA_j x_i^(n-1), Eq. (18) generalised
    return {
        "W2": outer(x1, W2, b2, dA2), "b2": dA2,
        "W3": outer(x2, W3, b3, dA3), "b3": dA3,
        "W4": outer(x3, W4, b4, dA4), "b4": dA4,
    }


def network_gradients_neat_trick(x1, W2, b2, W3, b3, W4, b4, y_hat):
    r"""The "neat trick": skip computing $dA_j^n$ where $a_j^n \le 0$; gradients unchanged.

    References: Challa, "Neat trick".
    """
    return network_gradients(x1, W2, b2, W3, b3, W4, b4, y_hat, skip_inactive=True)


def update_step(x1, W2, b2, W3, b3, W4, b4, y_hat, eta):
    r"""$\Delta w = -\eta \frac{\partial L}{\partial w}$, $\Delta b = -\eta \frac{\partial L}{\partial b}$,
    every gradient taken from the original weights and applied after all are computed.

    References: Challa, the update rule and "What do we need to store in every node?".
    """
    grads = network_gradients(x1, W2, b2, W3, b3, W4, b4, y_hat)
    params = {"W2": W2, "b2": b2, "W3": W3, "b3": b3, "W4": W4, "b4": b4}
    return {k: params[k] - eta * grads[k] for k in params}


# --- "Fix for overflow issue" ---------------------------------------------------------------

#: "The input limit is about 709 for double type and 88 for float type".
STATED_EXP_LIMITS = {"float64": 709.0, "float32": 88.0}


def exp_limit(dtype) -> float:
    """The document's limit of a type: as stated for double and float; for a type it does
    not name (bfloat16, float16), the same rule, the largest input ``exp`` takes rounded
    down (88 for bfloat16, whose range is float32's; 11 for float16, largest 65504)."""
    name = jnp.dtype(dtype).name
    return STATED_EXP_LIMITS.get(name) or float(np.floor(np.log(float(jnp.finfo(dtype).max))))


def _naive_softmax(a):
    e = jnp.exp(a)
    return e / jnp.sum(e)


def last_layer_delta_scaled_input(a, y_hat):
    r"""The stated fix: scale the softmax input so its largest magnitude does not exceed the
    limit of its type (709 for double, 88 for float), then $dA = y - \hat{y}$.

    References: Challa, §2, "Fix for overflow issue".
    """
    limit = exp_limit(a.dtype)
    scale = jnp.minimum(1.0, limit / jnp.maximum(jnp.max(jnp.abs(a)), 1.0)).astype(a.dtype)
    return _naive_softmax(a * scale) - y_hat


def last_layer_delta_shifted_input(a, y_hat):
    r"""The fix corrected: shift the input by its maximum, $y = \mathrm{softmax}(a - \max_j a_j)$
    (softmax is unchanged by a shift, not by a scaling), then $dA = y - \hat{y}$.

    References: Challa, §2, "Fix for overflow issue".
    """
    return _naive_softmax(a - jnp.max(a)) - y_hat
