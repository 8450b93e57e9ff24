r"""Nirbhay Sharma, "Neural Network Maths" (IISc Bangalore, December 11, 2024).

Seed ``000_48326af0f7e82b19.txt``. Vectors are columns, as in the document: a layer is
$Y = WX + b$ with $W \in \mathbb{R}^{m \times n}$, $X \in \mathbb{R}^{n \times 1}$,
$b, Y \in \mathbb{R}^{m \times 1}$. Gradients flowing in from the next layer are
``dE_dY`` (the document's $\partial E / \partial Y$).
"""

import jax.numpy as jnp

from derivations._common import sigmoid, softmax

# --- 1. Activation derivatives ------------------------------------------------------


def sigmoid_derivative(x):
    r"""Eq. (1): $\frac{d\sigma(x)}{dx} = \sigma(x)(1 - \sigma(x))$.

    References: Sharma, "Neural Network Maths", §1.1, Eq. (1).
    """
    s = sigmoid(x)
    return s * (1 - s)


def tanh_definition(x):
    r"""§1, item 2: $\tanh(x) = \frac{e^{2x} - 1}{e^{2x} + 1}$, computed as printed ($e^{2x}$ overflows
    for $2x$ beyond the logarithm of the dtype's largest number).

    References: Sharma, §1, the list of activation functions, item 2.
    """
    e = jnp.exp(2 * x)
    return (e - 1) / (e + 1)


def tanh_derivative(x):
    r"""Eq. (2): $\frac{d\tanh(x)}{dx} = 1 - \tanh(x)^2$.

    References: Sharma, §1.2, Eq. (2).
    """
    return 1 - jnp.tanh(x) ** 2


def relu_derivative(x):
    r"""Eq. (3): $\frac{dReLU(x)}{dx} = 1$ if $x > 0$ else $0$.

    References: Sharma, §1.3, Eq. (3).
    """
    return jnp.where(x > 0, 1.0, 0.0).astype(x.dtype)


def silu_derivative_expanded(x):
    r"""Eq. (4), first form: $x\sigma(x)(1 - \sigma(x)) + \sigma(x)$.

    References: Sharma, §1.4, Eq. (4).
    """
    s = sigmoid(x)
    return x * s * (1 - s) + s


def silu_derivative_factored(x):
    r"""Eq. (4), last form: $\sigma(x)(1 + x(1 - \sigma(x)))$.

    References: Sharma, §1.4, Eq. (4).
    """
    s = sigmoid(x)
    return s * (1 + x * (1 - s))


# --- 1.5 Softmax Jacobian -----------------------------------------------------------


def softmax_jacobian_diagonal(x):
    r"""Eq. (7): $\frac{\partial y_i}{\partial x_i} = y_i(1 - y_i)$, for every $i$.

    Args:
      x: the logits $x$, shape ``(n,)``. Returns the diagonal, shape ``(n,)``.

    References: Sharma, §1.5, Eq. (7).
    """
    y = softmax(x)
    return y * (1 - y)


def softmax_jacobian_offdiagonal(x):
    r"""Eq. (8): $\frac{\partial y_i}{\partial x_j} = -y_i y_j$ for $i \ne j$.

    Returns the ``(n, n)`` matrix of these entries with its diagonal (not covered by the
    equation) set to zero.

    References: Sharma, §1.5, Eq. (8).
    """
    y = softmax(x)
    off = ~jnp.eye(x.shape[0], dtype=bool)
    return jnp.where(off, -y[:, None] * y[None, :], 0.0).astype(x.dtype)


def softmax_jacobian_matrix(x):
    r"""Eq. (9): the matrix with $y_i(1 - y_i)$ on the diagonal and $-y_i y_j$ elsewhere.

    Row $i$, column $j$ holds $\partial y_i / \partial x_j$ (the layout of the left side).

    References: Sharma, §1.5, Eq. (9).
    """
    y = softmax(x)
    eye = jnp.eye(x.shape[0], dtype=bool)
    return jnp.where(eye, (y * (1 - y))[:, None], -y[:, None] * y[None, :])


# --- 3.1 Linear layer Y = WX + b ----------------------------------------------------


def linear_input_gradient_as_printed(W, X, b, dE_dY):
    r"""Eqs. (16)-(17) as printed:
    $\frac{\partial E}{\partial x_j} = \sum_{i=1}^{n} \frac{\partial E}{\partial y_i} w_{ij}$,
    the sum over the first $n$ of the $m$ outputs ($n$ the length of $X$; it has a meaning for $n \le m$).

    References: Sharma, §3.1, Eqs. (16) and (17), the sums.
    """
    n = X.shape[0]
    return W[:n].T @ dE_dY[:n]


def linear_input_gradient(W, X, b, dE_dY):
    r"""Eqs. (17), (24): $\frac{\partial E}{\partial X} = W^T \frac{\partial E}{\partial Y}$, the sums of
    Eq. (16) over all $m$ outputs.

    References: Sharma, §3.1, Eqs. (16), (17) and (24).
    """
    return W.T @ dE_dY


def linear_bias_gradient_as_printed(W, X, b, dE_dY):
    r"""Eq. (19) as printed: $\frac{\partial E}{\partial b_j} = \sum_{i=1}^n \frac{\partial E}{\partial y_i}
    \frac{\partial y_i}{\partial b_j}$, $\partial y_i / \partial b_j$ being 1 for $i = j$: the sum over the
    first $n$ outputs keeps $\partial E / \partial y_j$ only for $j \le n$.

    References: Sharma, §3.1, Eq. (19), the sum.
    """
    n = X.shape[0]
    return jnp.where(jnp.arange(dE_dY.shape[0])[:, None] < n, dE_dY, 0.0).astype(dE_dY.dtype)


def linear_bias_gradient(W, X, b, dE_dY):
    r"""Eqs. (18)-(20), (24): $\frac{\partial E}{\partial b} = \frac{\partial E}{\partial Y}$.

    References: Sharma, §3.1, Eqs. (19), (20) and (24).
    """
    return dE_dY


def linear_weight_gradient(W, X, b, dE_dY):
    r"""Eqs. (21)-(22), (24): $\frac{\partial E}{\partial W} = \frac{\partial E}{\partial Y} X^T$.

    References: Sharma, §3.1, Eq. (22), the second Eq. (21) and Eq. (24).
    """
    return dE_dY @ X.T


# --- 3.2-3.6 Activation layers --------------------------------------------------------


def sigmoid_backprop(X, dE_dY):
    r"""Eq. (28): $\frac{\partial E}{\partial X} = \frac{\partial E}{\partial Y} \odot Y(1 - Y)$, $Y = \sigma(X)$.

    References: Sharma, §3.2, Eqs. (26)-(28).
    """
    Y = sigmoid(X)
    return dE_dY * Y * (1 - Y)


def tanh_backprop(X, dE_dY):
    r"""Eq. (32): $\frac{\partial E}{\partial X} = \frac{\partial E}{\partial Y} \odot (1 - Y^2)$, $Y = \tanh(X)$.

    References: Sharma, §3.3, Eqs. (30)-(32).
    """
    Y = jnp.tanh(X)
    return dE_dY * (1 - Y**2)


def relu_backprop_elementwise(X, dE_dY):
    r"""Eq. (34): $\frac{\partial E}{\partial x_j} = \frac{\partial E}{\partial y_j}$ where $y_j \ne 0$, else 0.

    References: Sharma, §3.4, Eq. (34).
    """
    Y = jnp.maximum(X, 0)
    return jnp.where(Y != 0, dE_dY, 0.0).astype(dE_dY.dtype)


def relu_backprop_as_printed(X, dE_dY):
    r"""Eq. (35) as printed: $\frac{\partial E}{\partial X} = \frac{\partial E}{\partial Y}_{Y<0=0}$.

    $\partial E / \partial Y$ with the entries where $Y < 0$ set to 0.

    References: Sharma, §3.4, Eq. (35).
    """
    Y = jnp.maximum(X, 0)
    return jnp.where(Y < 0, 0.0, dE_dY).astype(dE_dY.dtype)


def relu_backprop_corrected(X, dE_dY):
    r"""Eq. (35) corrected: $\frac{\partial E}{\partial X} = \frac{\partial E}{\partial Y} \odot \mathbb{1}[X > 0]$.

    The mask is on $X$ (equivalently $Y \le 0$), as Eq. (34) has it.

    References: Sharma, §3.4, Eqs. (34)-(35).
    """
    return jnp.where(X > 0, dE_dY, 0.0).astype(dE_dY.dtype)


def silu_backprop(X, dE_dY):
    r"""Eq. (39): the SiLU layer's input gradient.

    $\frac{\partial E}{\partial X} = \frac{\partial E}{\partial Y} \odot \sigma(X)(1 + X \odot (1 - \sigma(X)))$.

    References: Sharma, §3.5, Eqs. (37)-(39).
    """
    s = sigmoid(X)
    return dE_dY * s * (1 + X * (1 - s))


def softmax_backprop(X, dE_dY):
    r"""Eq. (44): $\frac{\partial E}{\partial X} = J \frac{\partial E}{\partial Y}$, $J$ the matrix of Eq. (42).

    Args:
      X: logits, a column ``(n, 1)``; dE_dY: a column ``(n, 1)``.

    References: Sharma, §3.6, Eqs. (41)-(44).
    """
    return softmax_jacobian_matrix(X[:, 0]) @ dE_dY


def softmax_backprop_masked(X, dE_dY):
    r"""Eq. (46): $\frac{\partial E}{\partial X} = M \odot (I - M^T) \frac{\partial E}{\partial Y}$.

    $M$ (Eq. (45)) repeats the row $(y_1, \dots, y_n)$ in every row: $M_{ij} = y_j$.

    References: Sharma, §3.6, Eqs. (45)-(46).
    """
    y = softmax(X[:, 0])
    n = y.shape[0]
    M = jnp.broadcast_to(y[None, :], (n, n))
    return (M * (jnp.eye(n, dtype=X.dtype) - M.T)) @ dE_dY


# --- 3.7 Cross-entropy -----------------------------------------------------------------


def cross_entropy_derivative(y_hat, y):
    r"""Eq. (47): $\frac{\partial E}{\partial \hat{y}_i} = -1/\hat{y}_i$ if $y_i = 1$, else 0.

    For $E = -\sum_i y_i \log \hat{y}_i$; ``y_hat`` the predicted probabilities, ``y`` the
    targets.

    References: Sharma, §3.7, Eq. (47).
    """
    return jnp.where(y == 1, -1.0 / y_hat, 0.0).astype(y_hat.dtype)


# --- 2 / 3 The network, back-propagated layer by layer --------------------------------


def network_backprop(x, W1, b1, W2, b2, W3, b3, y):
    r"""§2 network $\mathrm{Softmax}(L_3(\tanh(L_2(\sigma(L_1(x))))))$, $L_k(X) = W_k X + b_k$,
    with $E = -\sum y_i \log \hat{y}_i$ (§3.7), back-propagated with the document's rules.

    Order: Eq. (47) for $\partial E / \partial \hat{y}$, Eq. (46) through the softmax,
    Eq. (24) through $L_3$, Eq. (32) through tanh, Eq. (24) through $L_2$, Eq. (28)
    through the sigmoid and Eq. (24) through $L_1$.

    Args:
      x: input column ``(n0, 1)``; W1..b3: the layers' parameters (columns for biases);
      y: one-hot target vector ``(n3,)``.

    Returns the gradients of every parameter, as a dict keyed like the arguments.

    References: Sharma, §2 item 3, §3.1-§3.7, Eqs. (24), (28), (32), (46), (47).
    """
    h1 = sigmoid(W1 @ x + b1)
    z2 = W2 @ h1 + b2
    h2 = jnp.tanh(z2)
    z3 = W3 @ h2 + b3
    y_hat = softmax(z3[:, 0])[:, None]

    dE_dyhat = cross_entropy_derivative(y_hat, y[:, None])  # (47)
    dE_dz3 = softmax_backprop_masked(z3, dE_dyhat)  # (46)
    dE_dW3, dE_db3 = dE_dz3 @ h2.T, dE_dz3  # (24)
    dE_dh2 = W3.T @ dE_dz3  # (24)
    dE_dz2 = dE_dh2 * (1 - h2**2)  # (32)
    dE_dW2, dE_db2 = dE_dz2 @ h1.T, dE_dz2  # (24)
    dE_dh1 = W2.T @ dE_dz2  # (24)
    dE_dz1 = dE_dh1 * h1 * (1 - h1)  # (28)
    dE_dW1, dE_db1 = dE_dz1 @ x.T, dE_dz1  # (24)
    return {"W1": dE_dW1, "b1": dE_db1, "W2": dE_dW2, "b2": dE_db2, "W3": dE_dW3, "b3": dE_db3}
