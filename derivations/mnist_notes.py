r"""Handwritten notes on neural networks and MNIST (seed ``003_8e9a08f39cb9b889.txt``).

The notes write a layer as $Z = W^T X + B$, the weights of each neuron a *column* of $W$,
and a neuron as $z = \vec{w}^T \vec{u} + b$. Hidden layers use the sigmoid, the output
layer softmax with the cross-entropy loss $L = -\sum y_i \log \hat{y}_i$; $\hat{y}$ is the
prediction, $y$ the one-hot target. ``S`` (the notes' $\delta$) is $\partial L/\partial z$.
"""

import jax.numpy as jnp

from derivations._common import sigmoid, softmax

# --- Chain of derivation -------------------------------------------------------------------


def multipath_chain_rule(t):
    r"""$t \to u = f(t),\ t \to y = g(t),\ z = h(u, y)$: the sum over both paths,
    $\frac{\partial z}{\partial u}\frac{\partial u}{\partial t}
    + \frac{\partial z}{\partial y}\frac{\partial y}{\partial t}$,
    here with $f = \sigma$, $g(t) = t^2$, $h(u, y) = u y$: $y\,\sigma'(t) + u \cdot 2t$.

    References: notes, "Chain of derivation", the example $t \to u \to z$, $t \to y \to z$.
    """
    u, y = sigmoid(t), t**2
    return y * (u * (1 - u)) + u * (2 * t)


# --- Neuron and layer ----------------------------------------------------------------------


def neuron_weight_gradient(w, u, b):
    r"""$z = \vec{w}^T\vec{u} + b$: $\frac{\partial z}{\partial w_i} = u_i$ (the notes write $a$ for the input).

    References: notes, "Neuron" and "To calculate dL/dw_i".
    """
    return u


def neuron_bias_gradient(w, u, b):
    r"""$\frac{\partial z}{\partial b} = 1$.

    References: notes, "To calculate dL/db".
    """
    return jnp.ones_like(b)


# --- Activation derivatives ----------------------------------------------------------------


def relu_derivative(u):
    r"""$\sigma'(u) = 1$ if $u > 0$, $0$ if $u \le 0$.

    References: notes, "Activation function", (i) ReLU.
    """
    return jnp.where(u > 0, 1.0, 0.0).astype(u.dtype)


def sigmoid_derivative(u):
    r"""$\sigma'(u) = \sigma(u)(1 - \sigma(u))$.

    References: notes, "Activation function", (ii) Sigmoid.
    """
    s = sigmoid(u)
    return s * (1 - s)


def softmax_offdiagonal(z):
    r"""$\frac{\partial y_i}{\partial z_j} = -y_i y_j$ for $i \ne j$ (printed "$k \ne j$"), diagonal 0.

    References: notes, "Activation function", (iii) Softmax, "Derivative".
    """
    y = softmax(z)
    return jnp.where(jnp.eye(z.shape[0], dtype=bool), 0.0, -y[:, None] * y[None, :]).astype(z.dtype)


# --- Error functions -----------------------------------------------------------------------


def sse_multiple_samples(y_pred, y):
    r"""SSE over samples: $L = L_1 + L_2 + \dots = \sum_{i=1}^n (y_i - \hat{y}_i)^2$.

    References: notes, "Error function", (i) SSE.
    """
    return jnp.sum((y - y_pred) ** 2)


def cross_entropy_one_hot(y_hat, y):
    r"""One sample, one-hot target of class $c$: $L = -[0 + \log\hat{y}_c + 0 + \dots] = -\log \hat{y}_c$.

    References: notes, "Cross Entropy loss", the five-class example.
    """
    return -jnp.log(jnp.sum(y * y_hat))


# --- Backpropagation -----------------------------------------------------------------------


def output_delta(z, y):
    r"""$\frac{dL}{dz_i} = \hat{y}_i - y_i$, with $\hat{y} = \mathrm{softmax}(z)$.

    References: notes, "For Single Sample", the boxed result.
    """
    return softmax(z) - y


def delta_recursion_as_printed(z, W, S):
    r"""$S_{prev} = (W^T S)\,\sigma'(z)$, ``W`` the next layer's weights in the notes' layout
    (neurons as columns, $Z = W^T X + B$), ``S`` its delta.

    References: notes, "For whole layer", $(w^T S)\sigma'(z)$.
    """
    return (W.T @ S) * sigmoid_derivative(z)


def delta_recursion(z, W, S):
    r"""Corrected for the notes' layout: $S_{prev} = (W S) \odot \sigma'(z)$, as the notes' own
    $W_2 S$ expansion ("matches with chain of derivative") computes.

    References: notes, "For whole layer", the $W_2 S$ expansion.
    """
    return (W @ S) * sigmoid_derivative(z)


def delta_recursion_row_weights(z, W, S):
    r"""With the weights of each neuron as a *row* ($Z = W X + B$): $S_{prev} = (W^T S)\,\sigma'(z)$.

    References: notes, "May need to use $W^T S$ if weights of neurons are row vector".
    """
    return (W.T @ S) * sigmoid_derivative(z)


def _gradients(x, W1, B1, W2, B2, y):
    z1 = W1.T @ x + B1
    a1 = sigmoid(z1)
    z2 = W2.T @ a1 + B2
    S2 = output_delta(z2, y)
    S1 = delta_recursion(z1, W2, S2)
    # dL/dw = S a: the weight from input i to neuron j gets a_i S_j; dL/db = S.
    return {"W1": x[:, None] * S1[None, :], "B1": S1, "W2": a1[:, None] * S2[None, :], "B2": S2}


def network_gradients(x, W1, B1, W2, B2, y):
    r"""Input → sigmoid → softmax, one sample: $S$ from the output back, $\frac{\partial L}{\partial w} = S \cdot a$,
    $\frac{\partial L}{\partial b} = S$.

    References: notes, "For Single Sample" to "To calculate dL/db".
    """
    return _gradients(x, W1, B1, W2, B2, y)


def gradient_descent_step(x, W1, B1, W2, B2, y, alpha):
    r"""$W = W - \alpha \nabla W$, $B = B - \alpha \nabla B$.

    References: notes, "Gradient descent" and "In matrix form".
    """
    params = {"W1": W1, "B1": B1, "W2": W2, "B2": B2}
    grads = _gradients(x, W1, B1, W2, B2, y)
    return {k: params[k] - alpha * grads[k] for k in params}


def batch_gradient_descent_step(X, W1, B1, W2, B2, Y, alpha):
    r"""Batch GD: every sample's own $S$ (not added across samples), its $\partial L/\partial w$
    and $\partial L/\partial b$, summed; one update with the sums.

    References: notes, "Batch gradient descent" and "Batch algorithm".
    """
    params = {"W1": W1, "B1": B1, "W2": W2, "B2": B2}
    total = {k: jnp.zeros_like(v) for k, v in params.items()}
    for k in range(X.shape[0]):
        grads = _gradients(X[k], W1, B1, W2, B2, Y[k])
        total = {name: total[name] + grads[name] for name in total}
    return {k: params[k] - alpha * total[k] for k in params}


def stochastic_epoch(X, W1, B1, W2, B2, Y, alpha):
    r"""Stochastic: for each sample, its $S$, $\partial L/\partial w$, $\partial L/\partial b$ at the
    current weights, then an update; one pass over the samples.

    References: notes, "Stochastic".
    """
    params = {"W1": W1, "B1": B1, "W2": W2, "B2": B2}
    for k in range(X.shape[0]):
        grads = _gradients(X[k], params["W1"], params["B1"], params["W2"], params["B2"], Y[k])
        params = {name: params[name] - alpha * grads[name] for name in params}
    return params
