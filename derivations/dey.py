r"""Sourya Dey, "Basic Operations of Neural Networks".

Seed ``004_9b5fcb69ac3a4cce.txt``. Vectors are columns ($N \times 1$); layer $l$ computes
$\mathbf{s}^{(l)} = \mathbf{W}^{(l)}\mathbf{a}^{(l-1)} + \mathbf{b}^{(l)}$ (1a) and
$\mathbf{a}^{(l)} = \mathbf{h}(\mathbf{s}^{(l)})$ (1b); the cost is cross-entropy (2). The
derivative $\partial f/\partial \mathbf{x}$ is a row, the gradient its transpose. The
output layer uses softmax (§3.2); hidden layers an elementwise $h$, here the sigmoid.
"""

import jax
import jax.numpy as jnp

from derivations._common import sigmoid

# --- §3 Activation derivatives ----------------------------------------------------------


def softmax_derivative_matrix(s):
    r"""§3.2: $\mathbf{H}'$ of softmax, $\frac{\partial a_i}{\partial s_i} = \frac{k_i(k - k_i)}{k^2}$,
    $\frac{\partial a_i}{\partial s_j} = -\frac{k_i k_j}{k^2}$, with $k_i = e^{s_i}$, $k = \sum_i k_i$.

    ``s`` is the column $(N, 1)$. The $k_i$ are taken as $e^{s_i - \max s}$: every entry is a
    ratio of the $k$'s, so the common factor cancels.

    References: Dey, §3.2, Eq. (18) and the sentence after it.
    """
    k_i = jnp.exp(s[:, 0] - jnp.max(s))
    k = jnp.sum(k_i)
    eye = jnp.eye(s.shape[0], dtype=bool)
    return jnp.where(eye, (k_i * (k - k_i) / k**2)[:, None], -k_i[:, None] * k_i[None, :] / k**2)


def softmax_derivative_matrix_transposed(s):
    r"""§3.2: $\mathbf{H}'$ is symmetric, $\frac{\partial a_i}{\partial s_j} = \frac{\partial a_j}{\partial s_i}$:
    $\mathbf{H}'^T$ computed from the entries of Eq. (18).

    References: Dey, §3.2, "Thus, H' is a symmetric matrix".
    """
    return softmax_derivative_matrix(s).T


def softmax(s):
    r"""Eq. (18): $\mathbf{a} = (k_1/k, \dots, k_N/k)^T$."""
    k_i = jnp.exp(s - jnp.max(s))
    return k_i / jnp.sum(k_i)


def elementwise_derivative_matrix(s):
    r"""Eq. (17): $\mathbf{H}' = \operatorname{diag}(h'(s_1), \dots, h'(s_N))$, for $h$ the sigmoid.

    References: Dey, §3.1, Eq. (17).
    """
    a = sigmoid(s[:, 0])
    return jnp.diag(a * (1 - a))


def mixing_activation_jacobian(s, A):
    r"""$\mathbf{H}'$ of the non-elementwise activation $\mathbf{a} = \tanh(\mathbf{A}\mathbf{s})$:
    $\mathbf{H}' = \operatorname{diag}(1 - \tanh^2(\mathbf{A}\mathbf{s}))\,\mathbf{A}$, not symmetric.
    An instance of §2.2's "any activation", under which a lost transpose shows.

    References: Dey, §2.2, where $\mathbf{H}'$ is "the matrix of activation function derivatives".
    """
    t = jnp.tanh(A @ s)
    return (1 - t**2) * A


# --- §1 Notation -------------------------------------------------------------------------


def steepest_ascent(s, y):
    r"""§1: the gradient's direction is that of maximum increase and its magnitude the rate of
    increase in that direction: for the cost $C(\mathbf{s})$ of Eq. (19), with
    $\nabla_{\mathbf{s}} C = \boldsymbol{\delta} = \mathbf{a}\sum_j y_j - \mathbf{y}$, the direction
    $\boldsymbol{\delta}/\lVert\boldsymbol{\delta}\rVert$ and the rate $\lVert\boldsymbol{\delta}\rVert$.

    References: Dey, §1, "its direction is the direction of maximum increase ... its magnitude is
    the rate of increase in that direction".
    """
    delta = output_delta_general(s, y)
    rate = jnp.sqrt(jnp.sum(delta**2))
    return {"direction": delta / rate, "rate": rate}


# --- §2.2 Backpropagation, output layer -------------------------------------------------


def bias_jacobian(a_prev, W, b):
    r"""§2.2: from (1a), $\frac{\partial \mathbf{s}^{(L)}}{\partial \mathbf{b}^{(L)}} = I$, the identity.

    References: Dey, §2.2, the sentence after Eq. (6).
    """
    return jnp.eye(W.shape[0], dtype=W.dtype)


def bias_jacobian_applied(a_prev, W, b, v):
    r"""$\frac{\partial \mathbf{s}^{(L)}}{\partial \mathbf{b}^{(L)}}\,\mathbf{v} = I\mathbf{v}$: the
    identity of :func:`bias_jacobian` applied to a direction ``v``. A constant matrix is
    checked through what it does to a vector, whose truth varies (DESIGN.md principle 9).

    References: Dey, §2.2, the sentence after Eq. (6).
    """
    return bias_jacobian(a_prev, W, b) @ v


def input_jacobian(a_prev, W, b):
    r"""§2.2: from (1a), $\frac{\partial \mathbf{s}^{(l+1)}}{\partial \mathbf{a}^{(l)}} = \mathbf{W}^{(l+1)}$.

    References: Dey, §2.2, the sentence after Eq. (12).
    """
    return W


def cost_derivative(a, y):
    r"""Eq. (3): the cost's derivative, a row.

    $\frac{\partial C}{\partial \mathbf{a}^{(L)}} = -\left[\frac{y_1}{a_1} \dots \frac{y_N}{a_N}\right]$.

    References: Dey, §2.2, Eq. (3).
    """
    return -(y / a).T


def output_cost_derivative(s, y):
    r"""Eq. (4): the derivative with respect to the output pre-activation, a row.

    $\frac{\partial C}{\partial \mathbf{s}^{(L)}} = \frac{\partial C}{\partial \mathbf{a}^{(L)}} \mathbf{H}'^{(L)}$.

    References: Dey, §2.2, Eq. (4).
    """
    return cost_derivative(softmax(s), y) @ softmax_derivative_matrix(s)


def output_delta(s, y):
    r"""Eq. (5): $\boldsymbol{\delta}^{(L)} = \mathbf{H}'^{(L)T} \nabla_{\mathbf{a}^{(L)}} C$, a column.

    References: Dey, §2.2, Eq. (5).
    """
    return softmax_derivative_matrix(s).T @ cost_derivative(softmax(s), y).T


def cost_derivative_any_activation(s, A, g):
    r"""Eq. (4) for $\mathbf{a} = \tanh(\mathbf{A}\mathbf{s})$: $\frac{\partial C}{\partial \mathbf{s}} =
    \frac{\partial C}{\partial \mathbf{a}} \mathbf{H}'$, a row, with $\nabla_{\mathbf{a}} C$ = ``g`` given.

    References: Dey, §2.2, Eq. (4).
    """
    return g.T @ mixing_activation_jacobian(s, A)


def delta_any_activation(s, A, g):
    r"""Eq. (5) for $\mathbf{a} = \tanh(\mathbf{A}\mathbf{s})$:
    $\boldsymbol{\delta} = \mathbf{H}'^T \nabla_{\mathbf{a}} C$, a column, with $\nabla_{\mathbf{a}} C$ = ``g`` given.

    References: Dey, §2.2, Eq. (5).
    """
    return mixing_activation_jacobian(s, A).T @ g


def output_bias_gradient(s, y):
    r"""Eq. (7): $\nabla_{\mathbf{b}^{(L)}} C = \boldsymbol{\delta}^{(L)}$.

    References: Dey, §2.2, Eqs. (6)-(7).
    """
    return output_delta(s, y)


def weight_derivative_tensor(a_prev, W, b):
    r"""Eq. (10): $\left(\frac{\partial \mathbf{s}^{(L)}}{\partial \mathbf{W}^{(L)}}\right)_{jk}$ is the
    $N^{(L)}$-column with $a_j^{(L-1)}$ at location $k$ and zeros elsewhere.

    Returns the tensor indexed ``[j, k, i]``, $j < N^{(L-1)}$, $k, i < N^{(L)}$.

    References: Dey, §2.2, the paragraph after Eq. (9) and Eq. (10).
    """
    n = W.shape[0]
    return a_prev[:, 0][:, None, None] * jnp.eye(n, dtype=a_prev.dtype)[None, :, :]


def output_weight_derivative(a_prev, W, b, y):
    r"""§2.2: the derivative with respect to the output weights (the derivative layout).

    $\frac{\partial C}{\partial \mathbf{W}^{(L)}} = \mathbf{a}^{(L-1)} \boldsymbol{\delta}^{(L)T}$.

    References: Dey, §2.2, the sentence before Eq. (11).
    """
    return a_prev @ output_delta(W @ a_prev + b, y).T


def output_weight_gradient(a_prev, W, b, y):
    r"""Eq. (11): $\nabla_{\mathbf{W}^{(L)}} C = \boldsymbol{\delta}^{(L)} \mathbf{a}^{(L-1)T}$.

    References: Dey, §2.2, Eq. (11).
    """
    return output_delta(W @ a_prev + b, y) @ a_prev.T


def delta_recursion(s, W_next, delta_next):
    r"""Eq. (13): $\boldsymbol{\delta}^{(l)} = \mathbf{H}'^{(l)T} \mathbf{W}^{(l+1)T} \boldsymbol{\delta}^{(l+1)}$.

    ``s`` is $\mathbf{s}^{(l)}$; $\mathbf{H}'^{(l)}$ by Eq. (17) for the sigmoid.

    References: Dey, §2.2, Eqs. (12)-(13).
    """
    return elementwise_derivative_matrix(s).T @ W_next.T @ delta_next


def delta_recursion_any_activation(s, A, W_next, delta_next):
    r"""Eq. (13) for $\mathbf{a}^{(l)} = \tanh(\mathbf{A}\mathbf{s}^{(l)})$:
    $\boldsymbol{\delta}^{(l)} = \mathbf{H}'^{(l)T} \mathbf{W}^{(l+1)T} \boldsymbol{\delta}^{(l+1)}$.

    References: Dey, §2.2, Eqs. (12)-(13).
    """
    return mixing_activation_jacobian(s, A).T @ W_next.T @ delta_next


def output_delta_general(s, y):
    r"""Eq. (19): $\boldsymbol{\delta} = \mathbf{H}' \nabla_{\mathbf{a}} C$, $\delta_i = a_i \sum_j y_j - y_i$.

    References: Dey, §3.2, Eq. (19).
    """
    a = softmax(s)
    return a * jnp.sum(y) - y


def output_delta_one_hot(s, y):
    r"""§3.2, after Eq. (19): for one-hot outputs, $\boldsymbol{\delta} = \mathbf{a} - \mathbf{y}$.

    References: Dey, §3.2, the paragraph after Eq. (19).
    """
    return softmax(s) - y


def augmented_weight_gradient(a_prev, W, b, y):
    r"""§2.2, bias trick: with $[\mathbf{W}\ \mathbf{b}]$ and $[\mathbf{a}^{(L-1)}; 1]$, step 4
    gives $\nabla_{[\mathbf{W}\,\mathbf{b}]} C = \boldsymbol{\delta}^{(L)} [\mathbf{a}^{(L-1)T}\ 1]$,
    whose last column is step 3's $\nabla_{\mathbf{b}} C$.

    References: Dey, §2.2, the paragraph after the four-step summary.
    """
    s = W @ a_prev + b
    augmented = jnp.concatenate([a_prev, jnp.ones((1, 1), a_prev.dtype)], axis=0)
    return output_delta(s, y) @ augmented.T


# --- §2.2 The four-step summary on a two-layer network ----------------------------------


def _deltas(a0, W1, b1, W2, b2, y):
    s1 = W1 @ a0 + b1  # (1a)
    a1 = sigmoid(s1)  # (1b), h = sigmoid
    s2 = W2 @ a1 + b2
    delta2 = output_delta(s2, y)  # step 1
    delta1 = delta_recursion(s1, W2, delta2)  # step 2
    return a1, delta1, delta2


def summary_gradients(a0, W1, b1, W2, b2, y):
    r"""§2.2, summary: steps 1-3 as printed, step 4 as meant,
    $\nabla_{\mathbf{W}^{(l)}} C = \boldsymbol{\delta}^{(l)} \mathbf{a}^{(l-1)T}$, for a network
    input → sigmoid layer → softmax layer with the cross-entropy cost.

    References: Dey, §2.2, the four-step summary.
    """
    a1, delta1, delta2 = _deltas(a0, W1, b1, W2, b2, y)
    return {"W1": delta1 @ a0.T, "b1": delta1, "W2": delta2 @ a1.T, "b2": delta2}


def summary_first_layer_weight_gradient_as_printed(a0, W1, b1, W2, b2, y):
    r"""§2.2, summary step 4 as printed, for the first of two layers:
    $\nabla_{\mathbf{W}^{(l)}} C = \boldsymbol{\delta}^{(L)} \mathbf{a}^{(L-1)T}$ at $l = 1$, $L = 2$.

    References: Dey, §2.2, the four-step summary, step 4.
    """
    a1, _, delta2 = _deltas(a0, W1, b1, W2, b2, y)
    return delta2 @ a1.T


# --- §2.3 Update ------------------------------------------------------------------------


def gradient_descent_step(a0, W1, b1, W2, b2, y, eta):
    r"""Eq. (14): $\mathbf{p} \leftarrow \mathbf{p} - \eta \nabla_{\mathbf{p}} C$ for every parameter,
    with the gradients of the summary.

    References: Dey, §2.3, Eq. (14).
    """
    grads = summary_gradients(a0, W1, b1, W2, b2, y)
    params = {"W1": W1, "b1": b1, "W2": W2, "b2": b2}
    return {k: params[k] - eta * grads[k] for k in params}


def minibatch_step(A0, W1, b1, W2, b2, Y, eta):
    r"""Eq. (15): $\mathbf{p} \leftarrow \mathbf{p} - \frac{\eta}{M} \sum_{i=1}^M (\nabla_{\mathbf{p}} C)^{[i]}$.

    ``A0`` and ``Y`` stack the $M$ samples' input and target columns.

    References: Dey, §2.3, Eq. (15).
    """
    per_sample = jax.vmap(summary_gradients, in_axes=(0, None, None, None, None, 0))(A0, W1, b1, W2, b2, Y)
    M = A0.shape[0]
    params = {"W1": W1, "b1": b1, "W2": W2, "b2": b2}
    return {k: params[k] - eta / M * jnp.sum(per_sample[k], axis=0) for k in params}
