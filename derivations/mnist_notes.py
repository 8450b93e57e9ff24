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


def path_sum_as_printed(a, b):
    r"""As printed: $\frac{\partial f}{\partial a} = \frac{\partial f}{\partial e}\frac{\partial e}{\partial c}
    \frac{\partial c}{\partial b} + \frac{\partial f}{\partial d}\frac{\partial d}{\partial e}
    \frac{\partial e}{\partial a}$ ("path 1" + "path 2").

    The factors imply the graph $b \to c \to e$, $a \to e$, $e \to d$, and $e, d \to f$; it is
    instantiated as $c = \tanh b$, $e = a c + a^2$, $d = \sigma(e)$, $f = e d$, so
    $\partial f/\partial e = d$, $\partial f/\partial d = e$, $\partial d/\partial e = d(1 - d)$,
    $\partial e/\partial c = a$, $\partial e/\partial a = c + 2a$, $\partial c/\partial b = 1 - c^2$.
    Path 1 is a path from $b$, not from $a$.

    References: notes, "Chain of derivation", the path-sum example.
    """
    c = jnp.tanh(b)
    e = a * c + a**2
    d = sigmoid(e)
    return d * a * (1 - c**2) + e * (d * (1 - d)) * (c + 2 * a)


def path_sum(a, b):
    r"""Corrected: the two paths from $a$ in that graph, $a \to e \to f$ and $a \to e \to d \to f$:
    $\frac{\partial f}{\partial a} = \frac{\partial f}{\partial e}\frac{\partial e}{\partial a}
    + \frac{\partial f}{\partial d}\frac{\partial d}{\partial e}\frac{\partial e}{\partial a}$.

    References: notes, "Chain of derivation", the path-sum example, its "path 2".
    """
    c = jnp.tanh(b)
    e = a * c + a**2
    d = sigmoid(e)
    return d * (c + 2 * a) + e * (d * (1 - d)) * (c + 2 * a)


# --- Neuron and layer ----------------------------------------------------------------------


def neuron_weight_gradient(w, u, b):
    r"""$z = \vec{w}^T\vec{u} + b$: $\frac{\partial z}{\partial w_i} = u_i$ (the notes write $a$ for the input).

    References: notes, "Neuron" and "To calculate dL/dw_i".
    """
    return u


def layer_stacked(W, X, B):
    r"""The layer in matrix form: $Z = [w_1\ w_2\ w_3]^T X + B = W^T X + B$, each neuron's
    weights a column of ``W``.

    References: notes, "layer: Multiple neurons in a layer are fed same input", Matrix form.
    """
    return W.T @ X + B


def neuron_bias_gradient(w, u, b, v):
    r"""$\frac{\partial z}{\partial b} = 1$, applied to a drawn direction ``v`` (a number): $1 \cdot v$.
    The constant is checked through what it does to ``v`` (DESIGN.md principle 9).

    References: notes, "To calculate dL/db".
    """
    return jnp.ones_like(b) * v


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


def softmax_last_output(z):
    r"""$y_1 + \dots + y_n = 1$, read as $y_n = 1 - \sum_{i<n} y_i$, each $y_i = e^{z_i} / \sum_j e^{z_j}$.

    References: notes, "Activation function", (iii) Softmax, "$y_1 + y_2 + y_3 = 1$".
    """
    y = softmax(z)
    return 1 - jnp.sum(y[:-1])


def softmax_jacobian_as_printed(z):
    r"""As printed: $\frac{\partial y_i}{\partial z_j} = -y_i y_j$ "for $k \ne j$", a condition on an
    index that appears nowhere else, so it excludes no $(i, j)$: $-y_i y_j$ everywhere.

    References: notes, "Activation function", (iii) Softmax, "Derivative".
    """
    y = softmax(z)
    return -y[:, None] * y[None, :]


def softmax_offdiagonal(z):
    r"""$\frac{\partial y_i}{\partial z_j} = -y_i y_j$ for $i \ne j$ (printed "$k \ne j$"), diagonal 0.

    References: notes, "Activation function", (iii) Softmax, "Derivative".
    """
    y = softmax(z)
    return jnp.where(jnp.eye(z.shape[0], dtype=bool), 0.0, -y[:, None] * y[None, :]).astype(z.dtype)


# --- Error functions -----------------------------------------------------------------------


def cross_entropy_one_hot(y_hat, y):
    r"""One sample, one-hot target of class $c$: $L = -[0 + \log\hat{y}_c + 0 + \dots] = -\log \hat{y}_c$.

    References: notes, "Cross Entropy loss", the five-class example.
    """
    return -jnp.log(jnp.sum(y * y_hat))


def mean_cross_entropy_gradient_as_printed(Z, Y):
    r"""As printed, $L = \frac{L_1 + \dots + L_n}{n} = \frac{\sum_i \log y_i}{n} + \dots$: the mean of
    the samples' log-probabilities of their classes without the single-sample loss's minus
    sign. Its gradient in sample $k$'s logits ``Z[k]`` is $(y_k - \hat{y}_k) / n$ (the boxed
    $\hat{y} - y$ of one sample, negated and divided by $n$); ``Y`` one-hot rows.

    References: notes, "Cross Entropy loss", "for multiple" samples.
    """
    return (Y - softmax(Z)) / Z.shape[0]


def mean_cross_entropy_gradient(Z, Y):
    r"""Corrected: $L = -\frac{1}{n} \sum_k \sum_i y_{k,i} \log \hat{y}_{k,i}$, the mean of the
    single-sample losses, has gradient $(\hat{y}_k \sum_i y_{k,i} - y_k) / n$ in ``Z[k]``.

    References: notes, "Cross Entropy loss", the single-sample loss and "for multiple" samples.
    """
    return (softmax(Z) * jnp.sum(Y, axis=-1, keepdims=True) - Y) / Z.shape[0]


# --- Backpropagation -----------------------------------------------------------------------


def output_delta(z, y):
    r"""$\frac{dL}{dz_i} = \hat{y}_i - y_i$, with $\hat{y} = \mathrm{softmax}(z)$.

    References: notes, "For Single Sample", the boxed result.
    """
    return softmax(z) - y


def neuron_delta_sum(z, w, S):
    r"""One neuron ``z`` (shape 1) feeding the next layer through weights ``w``:
    $\frac{\partial L}{\partial z} = \left(\sum_j \frac{\partial L}{\partial z_j} w_j\right)\sigma'(z)$,
    ``S`` the next layer's $\partial L / \partial z_j$.

    References: notes, "To calculate dL/dz_i for previous layer", "Hence".
    """
    return jnp.sum(S * w) * sigmoid_derivative(z)


def neuron_delta_matrix_form_as_printed(z, w, S):
    r"""As printed, "in matrix form": $\frac{\partial L}{\partial z} = (w^T)\,\sigma'(z)$, the delta
    vector ``S`` missing; a row vector the size of ``w``.

    References: notes, "To calculate dL/dz_i for previous layer", "In matrix form".
    """
    return w * sigmoid_derivative(z)


def neuron_delta_matrix_form(z, w, S):
    r"""Corrected: $\frac{\partial L}{\partial z} = (w^T S)\,\sigma'(z)$, as the notes' next display has it.

    References: notes, "In matrix form" and the display $S = \dots = (w^T S)\sigma'(z)$ after it.
    """
    return (w @ S) * sigmoid_derivative(z)


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
