r"""Aravind H. Vijay, "Deriving Neural Network Gradients" (June 26, 2019).

Seed ``002_ff98685daa51327f.txt``. Row-major batch layout, as in the document: index ``b``
is the sample, ``x`` a layer input, ``y`` a layer output, ``z`` the direction of a carried
derivative. A linear layer is $(O1)_{by} = (I2)_{yx} (I1)_{bx} + (I3)_y$; tangents
$(ID1)_{bzx}$ travel with the inputs; $DO1$ and $DOD1$ are the gradients of the loss with
respect to $O1$ and $OD1$. An index repeated on the right and absent on the left is summed
(the document's convention: $(DI3)_y = (DO1)_{by}$ sums over ``b``).

The activation is softsign, $\sigma[x] = x / (1 + |x|)$, written branch by branch.
"""

import jax.numpy as jnp

# --- 1.1 Activation layer: softsign and its derivatives, as printed per branch ---------


def softsign_rewrites_negative_branch(x):
    r"""§1.1, $x < 0$: $\sigma[x] = \frac{x}{1 - x} = \frac{1}{1 - x} - 1 = (1 - x)^{-1} - 1$, each form.

    References: Vijay, §1.1, softsign derivation, branch $x < 0$.
    """
    return {"x/(1-x)": x / (1 - x), "1/(1-x) - 1": 1 / (1 - x) - 1, "(1-x)^-1 - 1": (1 - x) ** -1 - 1}


def softsign_rewrites_nonnegative_branch(x):
    r"""§1.1, $x \ge 0$: $\sigma[x] = \frac{x}{1 + x} = 1 - \frac{1}{1 + x} = 1 - (1 + x)^{-1}$, each form.

    References: Vijay, §1.1, softsign derivation, branch $x \ge 0$.
    """
    return {"x/(1+x)": x / (1 + x), "1 - 1/(1+x)": 1 - 1 / (1 + x), "1 - (1+x)^-1": 1 - (1 + x) ** -1}


def softsign_first_derivative_negative_branch(x):
    r"""§1.1, $x < 0$: $\sigma'[x] = \frac{1}{(1 - x)^2}$.

    References: Vijay, §1.1, softsign derivation, branch $x < 0$.
    """
    return 1 / (1 - x) ** 2


def softsign_first_derivative_nonnegative_branch(x):
    r"""§1.1, $x \ge 0$: $\sigma'[x] = (1 + x)^{-2} = \frac{1}{(1 + x)^2}$.

    References: Vijay, §1.1, softsign derivation, branch $x \ge 0$.
    """
    return 1 / (1 + x) ** 2


def softsign_second_derivative_negative_branch(x):
    r"""§1.1, $x < 0$: $\sigma''[x] = 2(1 - x)^{-3} = \frac{2}{(1 - x)^3}$.

    References: Vijay, §1.1, softsign derivation, branch $x < 0$.
    """
    return 2 / (1 - x) ** 3


def softsign_second_derivative_nonnegative_branch(x):
    r"""§1.1, $x \ge 0$: $\sigma''[x] = -2(1 + x)^{-3} = \frac{-2}{(1 + x)^3}$.

    References: Vijay, §1.1, softsign derivation, branch $x \ge 0$.
    """
    return -2 / (1 + x) ** 3


def softsign(x):
    r"""$\sigma[x] = x/(1-x)$ for $x < 0$, $x/(1+x)$ for $x \ge 0$ (§1.1)."""
    return jnp.where(x < 0, x / (1 - jnp.minimum(x, 0)), x / (1 + jnp.maximum(x, 0)))


def softsign_first_derivative(x):
    r"""$\sigma'$ with the branch chosen by the sign of $x$, as §1.1 prints it."""
    return jnp.where(
        x < 0,
        softsign_first_derivative_negative_branch(jnp.minimum(x, 0)),
        softsign_first_derivative_nonnegative_branch(jnp.maximum(x, 0)),
    )


def softsign_second_derivative(x):
    r"""$\sigma''$ with the branch chosen by the sign of $x$; at $x = 0$ the $x \ge 0$ branch."""
    return jnp.where(
        x < 0,
        softsign_second_derivative_negative_branch(jnp.minimum(x, 0)),
        softsign_second_derivative_nonnegative_branch(jnp.maximum(x, 0)),
    )


def activation_input_gradient(I1, DO1):
    r"""§1.1: $[(DI1)_{by}] = [(DO1)_{by}][\sigma'\{(I1)_{by}\}]$.

    References: Vijay, §1.1, last line of the first display.
    """
    return DO1 * softsign_first_derivative(I1)


# --- 1.2 Linear layer, output back propagation ------------------------------------------


def linear_input_gradient(I1, I2, I3, DO1):
    r"""§1.2: $(DI1)_{bx} = (DO1)_{by}(I2)_{yx} \Rightarrow (DI1) = (DO1)(I2)$.

    References: Vijay, §1.2.
    """
    return DO1 @ I2


def linear_weight_gradient(I1, I2, I3, DO1):
    r"""§1.2: $(DI2)_{yx} = (DO1)_{by}(I1)_{bx}$, i.e. $(DI2) = (DO1)^T (I1)$.

    References: Vijay, §1.2.
    """
    return DO1.T @ I1


def linear_bias_gradient(I1, I2, I3, DO1):
    r"""§1.2: $(DI3)_y = (DO1)_{by}$, summed over the batch index $b$.

    References: Vijay, §1.2.
    """
    return jnp.sum(DO1, axis=0)


def linear_weight_gradient_squared(I1, I2, I3, DO1):
    r"""§1.2: $(DI2^2)_{yx} \equiv (DO1^2)_{by}(I1^2)_{bx}$, i.e. $(DO1^{2^T})(I1^2)$.

    Read as the sum over the batch of squared per-sample gradients.

    References: Vijay, §1.2.
    """
    return (DO1**2).T @ (I1**2)


def linear_bias_gradient_squared(I1, I2, I3, DO1):
    r"""§1.2: $(DI3^2)_y \equiv (DO1^2)_{by}$, summed over $b$.

    References: Vijay, §1.2.
    """
    return jnp.sum(DO1**2, axis=0)


# --- 2.1 Activation layer, gradient back propagation ----------------------------------


def activation_tangent_output(I1, ID1):
    r"""§2.1: $[(OD1)_{bzy}] = [\sigma'\{(I1)_{by}\}][(ID1)_{bzy}]$.

    References: Vijay, §2.1, second line of the first display.
    """
    return softsign_first_derivative(I1)[:, None, :] * ID1


def activation_input_gradient_double(I1, ID1, DO1, DOD1):
    r"""§2.1: the activation's input gradient, with its $\sigma''$ term.

    $[(DI1)_{by}] = [(DOD1)_{bzy}][\sigma''\{(I1)_{by}\}][(ID1)_{bzy}] + [(DO1)_{by}][\sigma'\{(I1)_{by}\}]$.

    The first term sums over $z$.

    References: Vijay, §2.1, second display.
    """
    second = softsign_second_derivative(I1)
    return jnp.sum(DOD1 * ID1, axis=1) * second + DO1 * softsign_first_derivative(I1)


def activation_tangent_gradient(I1, ID1, DO1, DOD1):
    r"""§2.1: $[(DID1)_{bzy}] = [(DOD1)_{bzy}][\sigma'\{(I1)_{by}\}]$.

    References: Vijay, §2.1, second display.
    """
    return DOD1 * softsign_first_derivative(I1)[:, None, :]


# --- 2.2 Linear layer, gradient back propagation --------------------------------------


def linear_tangent_output(I1, ID1, I2, I3):
    r"""§2.2: $[(OD1)_{bzy}] = [(I2)_{yx}][(ID1)_{bzx}]$, summed over $x$.

    References: Vijay, §2.2, first display, second line.
    """
    return jnp.einsum("yx,bzx->bzy", I2, ID1)


def linear_tangent_output_matrix(I1, ID1, I2, I3):
    r"""§2.2: $[(OD1)_b] = [(ID1)_b][(I2)^T]$, one $(z, x) \times (x, y)$ product per sample.

    References: Vijay, §2.2, first display, third line.
    """
    return ID1 @ I2.T


def linear_tangent_gradient(I1, ID1, I2, I3, DO1, DOD1):
    r"""§2.2: $[(DID1)_{bzx}] = +[(DOD1)_{bzy}][(I2)_{yx}]$.

    References: Vijay, §2.2.
    """
    return DOD1 @ I2


def linear_weight_gradient_double(I1, ID1, I2, I3, DO1, DOD1):
    r"""§2.2: $[(DI2)_{yx}] = +[(DOD1)_{bzy}][(ID1)_{bzx}] + [(DO1)_{by}][(I1)_{bx}]$.

    Sums over $b, z$ in the first term and $b$ in the second.

    References: Vijay, §2.2.
    """
    return jnp.einsum("bzy,bzx->yx", DOD1, ID1) + jnp.einsum("by,bx->yx", DO1, I1)


def linear_weight_gradient_double_matrix(I1, ID1, I2, I3, DO1, DOD1):
    r"""§2.2: $[(DI2)] = [(DO1)^T][(I1)] + [((DOD1)_b^T)][(ID1)_b]$, summed over $b$.

    References: Vijay, §2.2.
    """
    return DO1.T @ I1 + jnp.sum(jnp.swapaxes(DOD1, 1, 2) @ ID1, axis=0)


def linear_weight_gradient_squared_double_as_printed(I1, ID1, I2, I3, DO1, DOD1):
    r"""§2.2 as printed: the batch sum of squared per-sample weight gradients.

    $[(DI2)^2_{yx}] = +\sum_b\left(\sum_z [(DOD1)_{bzy}][(ID1)_{bzx}]\right)^2 + [(DO1)_{by}][(I1)_{bx}]$.

    References: Vijay, §2.2.
    """
    tangent_part = jnp.einsum("bzy,bzx->byx", DOD1, ID1)
    return jnp.sum(tangent_part**2, axis=0) + jnp.einsum("by,bx->yx", DO1, I1)


def linear_weight_gradient_squared_double_corrected(I1, ID1, I2, I3, DO1, DOD1):
    r"""§2.2 corrected: $\sum_b \left(\sum_z (DOD1)_{bzy}(ID1)_{bzx} + (DO1)_{by}(I1)_{bx}\right)^2$.

    The per-sample gradient of $I2$ has both parts; it is squared as a whole.

    References: Vijay, §2.2.
    """
    per_sample = jnp.einsum("bzy,bzx->byx", DOD1, ID1) + DO1[:, :, None] * I1[:, None, :]
    return jnp.sum(per_sample**2, axis=0)


def linear_input_gradient_double(I1, ID1, I2, I3, DO1, DOD1):
    r"""§2.2: $[(DI1)_{bx}] = +[(DO1)_{by}][(I2)_{yx}]$ ($OD1$ does not depend on $I1$).

    References: Vijay, §2.2.
    """
    return DO1 @ I2


def linear_bias_gradient_double(I1, ID1, I2, I3, DO1, DOD1):
    r"""§2.2: $[(DI3)_y] = +[(DO1)_{by}]$, summed over $b$.

    References: Vijay, §2.2.
    """
    return jnp.sum(DO1, axis=0)


def linear_bias_gradient_squared_double(I1, ID1, I2, I3, DO1, DOD1):
    r"""§2.2: $[(DI3)^2_y] = +[(DO1)^2_{by}]$, summed over $b$.

    References: Vijay, §2.2.
    """
    return jnp.sum(DO1**2, axis=0)


# --- 2 A two-layer network: linear -> softsign -> linear, with tangents ----------------


def _network_backward(I0, ID0, W1, c1, W2, c2, DO, DOD):
    """Forward with tangents, then §2.2 → §2.1 back; the arguments of each linear layer's rules."""
    A = I0 @ W1.T + c1[None, :]  # §1.2
    AD = linear_tangent_output(I0, ID0, W1, c1)  # §2.2
    H = softsign(A)  # §1.1
    HD = activation_tangent_output(A, AD)  # §2.1
    args2 = (H, HD, W2, c2, DO, DOD)
    DH, DHD = linear_input_gradient_double(*args2), linear_tangent_gradient(*args2)  # §2.2
    DA = activation_input_gradient_double(A, AD, DH, DHD)  # §2.1
    DAD = activation_tangent_gradient(A, AD, DH, DHD)  # §2.1
    return (I0, ID0, W1, c1, DA, DAD), args2


def network_double_backprop(I0, ID0, W1, c1, W2, c2, DO, DOD):
    r"""Linear $(W1, c1)$ → softsign → linear $(W2, c2)$, tangents $ID0$ carried along,
    back-propagated layer by layer with the rules of §2.2, §2.1 and §2.2.

    Returns the gradients of the loss (whose gradients with respect to the output $O$ and
    its tangents $OD$ are $DO$ and $DOD$) for every parameter and for $I0$ and $ID0$.

    References: Vijay, §2.1 and §2.2.
    """
    args1, args2 = _network_backward(I0, ID0, W1, c1, W2, c2, DO, DOD)
    return {
        "W1": linear_weight_gradient_double(*args1),
        "c1": linear_bias_gradient_double(*args1),
        "W2": linear_weight_gradient_double(*args2),
        "c2": linear_bias_gradient_double(*args2),
        "I0": linear_input_gradient_double(*args1),
        "ID0": linear_tangent_gradient(*args1),
    }


def network_squared_gradients(I0, ID0, W1, c1, W2, c2, DO, DOD):
    r"""Per-sample squared gradients of the network's parameters, summed over the batch,
    with the corrected §2.2 rule for weights and the printed $(DI3)^2$ rule for biases.

    References: Vijay, §2.1 and §2.2 (weights: the corrected $(DI2)^2$).
    """
    args1, args2 = _network_backward(I0, ID0, W1, c1, W2, c2, DO, DOD)
    return {
        "W1": linear_weight_gradient_squared_double_corrected(*args1),
        "c1": linear_bias_gradient_squared_double(*args1),
        "W2": linear_weight_gradient_squared_double_corrected(*args2),
        "c2": linear_bias_gradient_squared_double(*args2),
    }
