"""Claims of Nirbhay Sharma, "Neural Network Maths" (seed 000), in document order."""

from __future__ import annotations

import functools

import derivations.sharma2024 as cf
import reference.sharma2024 as ref
from derivcheck.claims import Arg, Claim, Document, Domain

DOCUMENT = Document(
    key="sharma2024",
    seed="000_48326af0f7e82b19.txt",
    title="Neural Network Maths",
    author="Nirbhay Sharma",
)

_claim = functools.partial(Claim, document=DOCUMENT)

# Shape buckets: one size per bucket for every dimension symbol. Sizes differ between
# symbols (so a dropped transpose changes shapes) and include the degenerate size 1.
_VECTOR = Domain((Arg("x", ("n",)),), dims=(("n", (1, 4, 9)),))
_LOGITS = Domain((Arg("x", ("n",), kind="logits", bound=60.0),), dims=(("n", (1, 3, 8)),))
_COLUMN_BACKPROP = Domain(
    (Arg("X", ("n", 1)), Arg("dE_dY", ("n", 1), bound=10.0)), dims=(("n", (1, 4, 9)),)
)
_RELU_BACKPROP = Domain(
    (Arg("X", ("n", 1), kinks=(0.0,)), Arg("dE_dY", ("n", 1), bound=10.0)),
    dims=(("n", (1, 4, 9)),),
)
_SOFTMAX_BACKPROP = Domain(
    (Arg("X", ("n", 1), kind="logits", bound=60.0), Arg("dE_dY", ("n", 1), bound=10.0)),
    dims=(("n", (1, 3, 8)),),
)
_LINEAR = Domain(
    (
        Arg("W", ("m", "n"), bound=10.0),
        Arg("X", ("n", 1), bound=10.0),
        Arg("b", ("m", 1), bound=10.0),
        Arg("dE_dY", ("m", 1), bound=10.0),
    ),
    dims=(("m", (1, 3, 7)), ("n", (1, 2, 5))),
)
_CROSS_ENTROPY = Domain(
    (Arg("y_hat", ("n",), kind="probability"), Arg("y", ("n",), kind="one_hot")),
    dims=(("n", (1, 3, 8)),),
)
# Parameters of moderate size (|w| <= 3, as initialisations have them): the logits stay
# within float32's range for softmax, so the true class's probability never underflows.
# In float16 the last layer is smaller: |W3 h2 + b3| <= 7 * 0.4 + 0.5 < 3.5, h2 = tanh(...).
_LOGITS_IN_FLOAT16 = functools.partial(
    Arg, float16_range="logits within 7 of each other: the true class's softmax output stays a normal float16 "
    "value (e^-7 / 4 > 6.1e-5), so 1 / a stays below 65504")
_NETWORK = Domain(
    (
        Arg("x", ("n0", 1), bound=3.0),
        Arg("W1", ("n1", "n0"), bound=3.0),
        Arg("b1", ("n1", 1), bound=3.0),
        Arg("W2", ("n2", "n1"), bound=3.0),
        Arg("b2", ("n2", 1), bound=3.0),
        _LOGITS_IN_FLOAT16("W3", ("n3", "n2"), bound=3.0, float16_bound=0.4),
        _LOGITS_IN_FLOAT16("b3", ("n3", 1), bound=3.0, float16_bound=0.5),
        Arg("y", ("n3",), kind="one_hot"),
    ),
    dims=(("n0", (1, 3, 5)), ("n1", (1, 4, 6)), ("n2", (1, 2, 7)), ("n3", (2, 3, 4))),
)

CLAIMS: tuple[Claim, ...] = (
    _claim(
        id="sharma2024/sec1-tanh-definition",
        location="§1, the list of activation functions, item 2",
        statement=r"tanh(x) = \frac{e^{2x}-1}{e^{2x}+1}",
        closed_form=cf.tanh_definition,
        reference=ref.tanh_value,
        checked_against="tanh itself (jnp.tanh)",
        domain=Domain((Arg("x", ("n",), bound=40.0, float16_bound=5.5,
                           float16_range="e^{2x} is finite in float16 up to x = 5.54"),), dims=_VECTOR.dims),
        expected="conditional",
        reason="True of the numbers, but computed as written e^{2x} overflows once 2x passes the log of the "
        "largest number, and inf / inf is NaN: for x > 44.36 in float32 and bfloat16, x > 354.89 in float64, "
        "x > 5.54 in float16.",
        preconditions=("x <= 44 (float32, bfloat16), x <= 354 (float64) or x <= 5.5 (float16): e^{2x} is finite",),
        outside=Domain((Arg("x", ("n",), bound=1000.0),), dims=_VECTOR.dims),
        note="Checked inside |x| <= 40 (5.5 in float16), where every dtype holds it, and outside up to 1000, where "
        "every dtype overflows.",
    ),
    _claim(
        id="sharma2024/eq1-sigmoid-derivative",
        location="§1.1, Eq. (1)",
        statement=r"\frac{d\sigma(x)}{dx} = \sigma(x)(1 - \sigma(x))",
        closed_form=cf.sigmoid_derivative,
        reference=ref.sigmoid_derivative,
        checked_against="JVP of sigma(x) = 1/(1+e^{-x}), elementwise",
        domain=_VECTOR,
    ),
    _claim(
        id="sharma2024/eq2-tanh-derivative",
        location="§1.2, Eq. (2)",
        statement=r"\frac{d\tanh(x)}{dx} = 1 - \tanh(x)^2",
        closed_form=cf.tanh_derivative,
        reference=ref.tanh_derivative,
        checked_against="JVP of tanh(x) = 2 sigma(2x) - 1, elementwise",
        domain=_VECTOR,
    ),
    _claim(
        id="sharma2024/eq3-relu-derivative",
        location="§1.3, Eq. (3)",
        statement=r"\frac{dReLU(x)}{dx} = 1 \text{ if } x > 0 \text{ else } 0",
        closed_form=cf.relu_derivative,
        reference=ref.relu_derivative,
        checked_against="JVP of max(x, 0); at x = 0 the one-sided derivatives 0 and 1",
        domain=Domain((Arg("x", ("n",), kinks=(0.0,)),), dims=_VECTOR.dims),
    ),
    _claim(
        id="sharma2024/eq4-silu-derivative-expanded",
        location="§1.4, Eq. (4), middle form",
        statement=r"\frac{dSiLU(x)}{dx} = x\sigma(x)(1 - \sigma(x)) + \sigma(x)",
        closed_form=cf.silu_derivative_expanded,
        reference=ref.silu_derivative,
        checked_against="JVP of x sigma(x), elementwise",
        domain=_VECTOR,
    ),
    _claim(
        id="sharma2024/eq4-silu-derivative-factored",
        location="§1.4, Eq. (4), last form",
        statement=r"\frac{dSiLU(x)}{dx} = \sigma(x)(1 + x(1 - \sigma(x)))",
        closed_form=cf.silu_derivative_factored,
        reference=ref.silu_derivative,
        checked_against="JVP of x sigma(x), elementwise",
        domain=_VECTOR,
    ),
    _claim(
        id="sharma2024/eq7-softmax-jacobian-diagonal",
        location="§1.5, Eq. (7)",
        statement=r"\frac{\partial y_i}{\partial x_i} = y_i (1 - y_i)",
        closed_form=cf.softmax_jacobian_diagonal,
        reference=ref.softmax_jacobian_diagonal,
        checked_against="diagonal of jax.jacfwd(softmax)",
        domain=_LOGITS,
        note="Equation (5) is numbered twice (the vector x, then the softmax) and there is no (6).",
    ),
    _claim(
        id="sharma2024/eq8-softmax-jacobian-offdiagonal",
        location="§1.5, Eq. (8)",
        statement=r"\frac{\partial y_i}{\partial x_j} = -y_i y_j \quad (i \ne j)",
        closed_form=cf.softmax_jacobian_offdiagonal,
        reference=ref.softmax_jacobian_offdiagonal,
        checked_against="off-diagonal entries of jax.jacfwd(softmax)",
        domain=_LOGITS,
        symmetries=(
            ("extra transpose", "the softmax Jacobian is symmetric: dy_i/dx_j = dy_j/dx_i"),
        ),
    ),
    _claim(
        id="sharma2024/eq9-softmax-jacobian-matrix",
        location="§1.5, Eq. (9)",
        statement=r"\frac{dy}{dx} = \begin{pmatrix} y_1(1-y_1) & -y_1y_2 & \dots & -y_1y_n \\ "
        r"\vdots & & \ddots & \vdots \\ -y_1y_n & -y_2y_n & \dots & y_n(1-y_n) \end{pmatrix}",
        closed_form=cf.softmax_jacobian_matrix,
        reference=ref.softmax_jacobian,
        checked_against="jax.jacfwd(softmax), row i = output i",
        domain=_LOGITS,
        symmetries=(
            ("extra transpose", "the softmax Jacobian is symmetric: dy_i/dx_j = dy_j/dx_i"),
        ),
    ),
    _claim(
        id="sharma2024/eq16-linear-input-gradient-sum",
        location="§3.1, Eqs. (16)-(17), the sums",
        statement=r"\frac{\partial E}{\partial x_j} = \sum_{i=1}^n \frac{\partial E}{\partial y_i} \frac{\partial y_i}{\partial x_j} = \sum_{i=1}^n \frac{\partial E}{\partial y_i} w_{ij}",
        closed_form=cf.linear_input_gradient_as_printed,
        reference=ref.linear_input_gradient,
        checked_against="VJP of Y = WX + b with respect to X",
        domain=_LINEAR,
        expected="typo",
        reason="The sum runs to n, the length of X, where i indexes the m outputs of Y (Eq. (14)): for m > n "
        "the terms i > n are lost. With m for n it holds, and Eq. (17)'s own W^T dE/dY sums all m.",
        note="Checked with n <= m, where the printed sum has a meaning.",
    ),
    _claim(
        id="sharma2024/eq17-linear-input-gradient",
        location="§3.1, Eqs. (17), (24)",
        statement=r"\frac{\partial E}{\partial X} = W^T \frac{\partial E}{\partial Y}",
        closed_form=cf.linear_input_gradient,
        reference=ref.linear_input_gradient,
        checked_against="VJP of Y = WX + b with respect to X",
        domain=_LINEAR,
        corrects="sharma2024/eq16-linear-input-gradient-sum",
        symmetries=(
            ("swapped arguments", "W^T dE/dY does not depend on X or b, the arguments swapped"),
        ),
    ),
    _claim(
        id="sharma2024/eq19-linear-bias-gradient-sum",
        location="§3.1, Eq. (19), the sum",
        statement=r"\frac{\partial E}{\partial b_j} = \sum_{i=1}^n \frac{\partial E}{\partial y_i} \frac{\partial y_i}{\partial b_j} = \frac{\partial E}{\partial y_j}",
        closed_form=cf.linear_bias_gradient_as_printed,
        reference=ref.linear_bias_gradient,
        checked_against="VJP of Y = WX + b with respect to b",
        domain=_LINEAR,
        expected="typo",
        reason="The same sum limit as Eq. (16): over i = 1..n of the m outputs, the sum misses dE/dy_j for "
        "j > n. With m for n it is dE/dy_j, as the line itself concludes and Eq. (20) has it.",
        note="Checked with n <= m, where the printed sum has a meaning.",
    ),
    _claim(
        id="sharma2024/eq20-linear-bias-gradient",
        location="§3.1, Eqs. (18), (20), (24)",
        statement=r"\frac{\partial E}{\partial b} = \frac{\partial E}{\partial Y}",
        closed_form=cf.linear_bias_gradient,
        reference=ref.linear_bias_gradient,
        checked_against="VJP of Y = WX + b with respect to b",
        domain=_LINEAR,
        corrects="sharma2024/eq19-linear-bias-gradient-sum",
        note="The sentence before Eq. (15) asks for dE/dD, where dE/db is meant (Eqs. (18)-(20)).",
        symmetries=(
            ("swapped arguments", "dE/dY does not depend on X or b, the arguments swapped"),
        ),
    ),
    _claim(
        id="sharma2024/eq22-linear-weight-gradient",
        location="§3.1, Eq. (22), second Eq. (21), Eq. (24)",
        statement=r"\frac{\partial E}{\partial W} = \frac{\partial E}{\partial Y} X^T",
        closed_form=cf.linear_weight_gradient,
        reference=ref.linear_weight_gradient,
        checked_against="VJP of Y = WX + b with respect to W",
        domain=_LINEAR,
        note="The document numbers two equations (21) and none (23); the matrix result is "
        "the second (21).",
    ),
    _claim(
        id="sharma2024/eq28-sigmoid-backprop",
        location="§3.2, Eqs. (26)-(28)",
        statement=r"\frac{\partial E}{\partial X} = \frac{\partial E}{\partial Y} \odot Y (1 - Y)",
        closed_form=cf.sigmoid_backprop,
        reference=ref.sigmoid_backprop,
        checked_against="VJP of Y = sigma(X)",
        domain=_COLUMN_BACKPROP,
    ),
    _claim(
        id="sharma2024/eq32-tanh-backprop",
        location="§3.3, Eqs. (30)-(32)",
        statement=r"\frac{\partial E}{\partial X} = \frac{\partial E}{\partial Y} \odot (1 - Y^2)",
        closed_form=cf.tanh_backprop,
        reference=ref.tanh_backprop,
        checked_against="VJP of Y = tanh(X)",
        domain=_COLUMN_BACKPROP,
    ),
    _claim(
        id="sharma2024/eq34-relu-backprop-elementwise",
        location="§3.4, Eq. (34)",
        statement=r"\frac{\partial E}{\partial x_j} = \frac{\partial E}{\partial y_j}_{y_i \neq 0}"
        r"\qquad (\text{read: } y_j \neq 0)",
        closed_form=cf.relu_backprop_elementwise,
        reference=ref.relu_backprop,
        checked_against="VJP of Y = max(X, 0); at X = 0 the one-sided values",
        domain=_RELU_BACKPROP,
        note="Printed with y_i in the condition, where the line is about y_j; i is bound only by the sum "
        "before it, so the printed condition has no meaning of its own. Read as: dE/dy_j where y_j != 0, "
        "and 0 where y_j = 0.",
    ),
    _claim(
        id="sharma2024/eq35-relu-backprop",
        location="§3.4, Eq. (35)",
        statement=r"\frac{\partial E}{\partial X} = \frac{\partial E}{\partial Y_{Y<0=0}}",
        closed_form=cf.relu_backprop_as_printed,
        reference=ref.relu_backprop,
        checked_against="VJP of Y = max(X, 0); at X = 0 the one-sided values",
        domain=_RELU_BACKPROP,
        expected="typo",
        reason="Y = ReLU(X) is never negative, so the mask Y < 0 zeroes nothing: the gradient passes through "
        "where X < 0, where it must be 0. With <= for < (Y = 0) it holds, and Eq. (34) masks exactly there.",
    ),
    _claim(
        id="sharma2024/eq35-relu-backprop-corrected",
        location="§3.4, Eq. (35), corrected",
        statement=r"\frac{\partial E}{\partial X} = \frac{\partial E}{\partial Y} \odot \mathbb{1}[X > 0]",
        closed_form=cf.relu_backprop_corrected,
        reference=ref.relu_backprop,
        checked_against="VJP of Y = max(X, 0); at X = 0 the one-sided values",
        domain=_RELU_BACKPROP,
        corrects="sharma2024/eq35-relu-backprop",
    ),
    _claim(
        id="sharma2024/eq39-silu-backprop",
        location="§3.5, Eqs. (37)-(39)",
        statement=r"\frac{\partial E}{\partial X} = \frac{\partial E}{\partial Y} \odot "
        r"\sigma(X)(1 + X \odot (1 - \sigma(X)))",
        closed_form=cf.silu_backprop,
        reference=ref.silu_backprop,
        checked_against="VJP of Y = X sigma(X)",
        domain=_COLUMN_BACKPROP,
    ),
    _claim(
        id="sharma2024/eq44-softmax-backprop",
        location="§3.6, Eqs. (41)-(44)",
        statement=r"\frac{\partial E}{\partial X} = \begin{pmatrix} y_1(1-y_1) & \dots & -y_1y_n "
        r"\\ \vdots & \ddots & \vdots \\ -y_1y_n & \dots & y_n(1-y_n) \end{pmatrix} "
        r"\frac{\partial E}{\partial Y}",
        closed_form=cf.softmax_backprop,
        reference=ref.softmax_backprop,
        checked_against="VJP of Y = softmax(X)",
        domain=_SOFTMAX_BACKPROP,
        note="Eq. (41) sums over the Jacobian's rows (J^T dE/dY); Eq. (44) multiplies by J. "
        "They agree because the softmax Jacobian is symmetric.",
    ),
    _claim(
        id="sharma2024/eq46-softmax-backprop-masked",
        location="§3.6, Eqs. (45)-(46)",
        statement=r"\frac{\partial E}{\partial X} = M \odot (I - M^T) \frac{\partial E}{\partial Y}",
        closed_form=cf.softmax_backprop_masked,
        reference=ref.softmax_backprop,
        checked_against="VJP of Y = softmax(X)",
        domain=_SOFTMAX_BACKPROP,
        note="M (Eq. (45)) has every row equal to (y_1, ..., y_n); the product is "
        "(M ⊙ (I - M^T)) dE/dY.",
    ),
    _claim(
        id="sharma2024/eq47-cross-entropy-derivative",
        location="§3.7, Eq. (47)",
        statement=r"\frac{\partial E}{\partial \hat{y}_i} = \begin{cases} -1/\hat{y}_i & y_i = 1 "
        r"\\ 0 & \text{otherwise} \end{cases}",
        closed_form=cf.cross_entropy_derivative,
        reference=ref.cross_entropy_derivative,
        checked_against="jax.grad of E = -sum y log(y_hat) with respect to y_hat",
        domain=_CROSS_ENTROPY,
        expected="conditional",
        reason="Exact only for one-hot targets: in general dE/dy_hat_i = -y_i / y_hat_i, "
        "which the cases y_i = 1 and otherwise do not cover.",
        preconditions=("targets y are one-hot",),
        outside=_CROSS_ENTROPY.with_kind("y", "smoothed"),
    ),
    _claim(
        id="sharma2024/sec2-network-backprop",
        location="§2 item 3 with §3.1-§3.7",
        statement=r"\mathrm{Softmax}(\mathrm{Layer}(\tanh(\mathrm{Layer}(\sigma(\mathrm{Layer}(x)))))),"
        r"\ \frac{\partial E}{\partial W_k}, \frac{\partial E}{\partial b_k} \text{ by (47), (46), "
        r"(24), (32), (24), (28), (24)}",
        closed_form=cf.network_backprop,
        reference=ref.network_gradients,
        checked_against="jax.grad of the whole network's cross-entropy for every parameter",
        domain=_NETWORK,
        expected="conditional",
        reason="Back-propagation starts from Eq. (47), which is exact only for one-hot "
        "targets; with soft targets every parameter gradient is off.",
        preconditions=("targets y are one-hot",),
        outside=_NETWORK.with_kind("y", "smoothed"),
    ),
)
