"""Claims of the handwritten notes on neural networks and MNIST (seed 003), in order."""

from __future__ import annotations

import functools

import derivations.mnist_notes as cf
import reference.mnist_notes as ref
from derivcheck.claims import Arg, Claim, Descent, Document, Domain

DOCUMENT = Document(
    key="mnist_notes",
    seed="003_8e9a08f39cb9b889.txt",
    title="Neural Network (handwritten notes, MNIST)",
    author="unnamed author",
)

_claim = functools.partial(Claim, document=DOCUMENT)

_N = ("n", (1, 3, 5))
_VECTOR = Domain((Arg("t", ("n",), bound=20.0),), dims=(_N,))
_PATHS = Domain((Arg("a", ("n",), bound=3.0), Arg("b", ("n",), bound=3.0)), dims=(_N,))
_SAMPLES = Domain((Arg("Z", ("K", "n"), kind="logits", bound=30.0), Arg("Y", ("K", "n"), kind="one_hot")),
                  dims=(("K", (1, 2, 4)), _N))
_ONE_NEURON = Domain((Arg("z", (1,), bound=20.0), Arg("w", ("n",), bound=5.0), Arg("S", ("n",), bound=5.0)),
                     dims=(_N,))
_NEURON = Domain((Arg("w", ("n",), bound=5.0), Arg("u", ("n",), bound=5.0), Arg("b", (), bound=5.0)), dims=(_N,))
_LOGITS = Arg("z", ("n",), kind="logits", bound=30.0)
_RECURSION = Domain(
    (Arg("z", ("m",), bound=20.0), Arg("W", ("m", "n"), bound=5.0), Arg("S", ("n",), bound=5.0)),
    dims=(("m", (1, 3, 4)), _N),
)
_NETWORK_ARGS = (
    Arg("x", ("n0",), bound=3.0),
    Arg("W1", ("n0", "n1"), bound=3.0),
    Arg("B1", ("n1",), bound=3.0),
    Arg("W2", ("n1", "n2"), bound=3.0),
    Arg("B2", ("n2",), bound=3.0),
    Arg("y", ("n2",), kind="one_hot"),
)
_NETWORK_DIMS = (("n0", (1, 3, 4)), ("n1", (1, 2, 4)), ("n2", (2, 3, 5)))
_ALPHA = Arg("alpha", (), kind="probability")
_BATCH_ARGS = (
    Arg("X", ("K", "n0"), bound=3.0),
    *_NETWORK_ARGS[1:5],
    Arg("Y", ("K", "n2"), kind="one_hot"),
    _ALPHA,
)
_BATCH_DIMS = (("K", (1, 2, 3)), *_NETWORK_DIMS)


_TARGETS_REASON = "Starts from dL/dz = y_hat - y, which uses y_1 + y_2 + y_3 = 1: exact only for targets summing to 1."
_TARGETS_PRECONDITION = ("targets y are one-hot (any summing to 1 will do)",)

CLAIMS: tuple[Claim, ...] = (
    _claim(
        id="mnist_notes/chain-rule-multipath",
        location="Chain of derivation, example t -> u, y -> z",
        statement=r"\frac{\partial z}{\partial t} = \frac{\partial z}{\partial u} \frac{\partial u}{\partial t} + \frac{\partial z}{\partial y} \frac{\partial y}{\partial t}",
        closed_form=cf.multipath_chain_rule,
        reference=ref.multipath_chain_rule,
        checked_against="JVP of z(t) = sigmoid(t) t^2 (f = sigmoid, g(t) = t^2, h(u, y) = u y)",
        domain=_VECTOR,
        note="The notes leave f, g, h open; one instance is checked.",
    ),
    _claim(
        id="mnist_notes/chain-rule-path-sum",
        location="Chain of derivation, the path-sum example (path 1 + path 2)",
        statement=r"\frac{\partial f}{\partial a} = \frac{\partial f}{\partial e} \frac{\partial e}{\partial c} "
        r"\frac{\partial c}{\partial b} + \frac{\partial f}{\partial d} \frac{\partial d}{\partial e} \frac{\partial e}{\partial a}",
        closed_form=cf.path_sum_as_printed,
        reference=ref.path_sum,
        checked_against="JVP in a of f = e sigmoid(e), e = a tanh(b) + a^2 (the graph the factors imply)",
        domain=_PATHS,
        expected="erratum",
        reason="Path 1 (f <- e <- c <- b) starts at b, not at a: it is a term of df/db. The paths from a "
        "are a -> e -> f and a -> e -> d -> f; the repair is a whole factor, not one symbol.",
        note="The figure is not in the text. The factors imply the graph b -> c -> e, a -> e, e -> d, "
        "(e, d) -> f, checked with c = tanh b, e = a c + a^2, d = sigmoid(e), f = e d.",
    ),
    _claim(
        id="mnist_notes/chain-rule-path-sum-corrected",
        location="Chain of derivation, the path-sum example, corrected",
        statement=r"\frac{\partial f}{\partial a} = \frac{\partial f}{\partial e} \frac{\partial e}{\partial a} "
        r"+ \frac{\partial f}{\partial d} \frac{\partial d}{\partial e} \frac{\partial e}{\partial a}",
        closed_form=cf.path_sum,
        reference=ref.path_sum,
        checked_against="JVP in a of f = e sigmoid(e), e = a tanh(b) + a^2",
        domain=_PATHS,
        corrects="mnist_notes/chain-rule-path-sum",
    ),
    _claim(
        id="mnist_notes/layer-matrix-form",
        location="layer: Multiple neurons in a layer, Matrix form",
        statement=r"Z = \begin{bmatrix} w_1^T X + b_1 \\ w_2^T X + b_2 \\ w_3^T X + b_3 \end{bmatrix} "
        r"= \begin{bmatrix} w_1 & w_2 & w_3 \end{bmatrix}^T X + B = w^T X + B",
        closed_form=cf.layer_stacked,
        reference=ref.layer_neuron_by_neuron,
        checked_against="each neuron's z_i = w_i . X + b_i on its own, stacked",
        domain=Domain((Arg("W", ("n", "m"), bound=5.0), Arg("X", ("n",), bound=5.0), Arg("B", ("m",), bound=5.0)),
                      dims=(_N, ("m", (1, 2, 4)))),
    ),
    _claim(
        id="mnist_notes/neuron-weight-gradient",
        location="Neuron; To calculate dL/dw_i",
        statement=r"z = \vec{w}^T \vec{u} + b,\quad \frac{\partial z_1}{\partial w_i} = a",
        closed_form=cf.neuron_weight_gradient,
        reference=ref.neuron_weight_gradient,
        checked_against="jax.grad of z = w . u + b with respect to w",
        domain=_NEURON,
    ),
    _claim(
        id="mnist_notes/neuron-bias-gradient",
        location="Neuron; To calculate dL/db",
        statement=r"\frac{\partial z_1}{\partial b} = 1",
        closed_form=cf.neuron_bias_gradient,
        reference=ref.neuron_bias_gradient,
        checked_against="jax.jvp of z = w . u + b along a drawn direction v of b",
        domain=Domain((*_NEURON.args, Arg("v", (), kind="direction")), dims=_NEURON.dims),
        note="Checked as 1 * v for a drawn v: the derivative is the same at every point, and a check "
        "against a constant would pass any closed form returning it.",
        symmetries=(
            ("swapped arguments", "1 * v does not depend on w or u, the arguments swapped"),
        ),
    ),
    _claim(
        id="mnist_notes/relu-derivative",
        location="Activation function (i) ReLU",
        statement=r"\sigma'(u) = \begin{cases} 1 & u > 0 \\ 0 & u \leq 0 \end{cases}",
        closed_form=cf.relu_derivative,
        reference=ref.relu_derivative,
        checked_against="JVP of max(u, 0); at u = 0 the one-sided derivatives 0 and 1",
        domain=Domain((Arg("u", ("n",), kinks=(0.0,)),), dims=(_N,)),
    ),
    _claim(
        id="mnist_notes/sigmoid-derivative",
        location="Activation function (ii) Sigmoid",
        statement=r"\sigma'(u) = \sigma(u)(1 - \sigma(u))",
        closed_form=cf.sigmoid_derivative,
        reference=ref.sigmoid_derivative,
        checked_against="JVP of 1 / (1 + e^{-u}), elementwise",
        domain=Domain((Arg("u", ("n",)),), dims=(_N,)),
    ),
    _claim(
        id="mnist_notes/softmax-outputs-sum-to-one",
        location="Activation function (iii) Softmax, y_1 + y_2 + y_3 = 1",
        statement=r"y_1 + y_2 + y_3 = 1 \quad (\text{checked as } y_n = 1 - \textstyle\sum_{i<n} y_i)",
        closed_form=cf.softmax_last_output,
        reference=ref.softmax_last_output,
        checked_against="the last output of softmax itself",
        domain=Domain((_LOGITS,), dims=(_N,)),
        note="Checked in a form whose truth is not a constant: a check against the constant 1 "
        "would pass for any closed form that returns 1.",
    ),
    _claim(
        id="mnist_notes/softmax-derivative-as-printed",
        location="Activation function (iii) Softmax, Derivative",
        statement=r"\frac{\partial y_i}{\partial z_j} = -y_i y_j \quad k \neq j",
        closed_form=cf.softmax_jacobian_as_printed,
        reference=ref.softmax_jacobian,
        checked_against="jax.jacfwd(softmax), every entry",
        domain=Domain((_LOGITS,), dims=(_N,)),
        expected="typo",
        reason="The condition names k, an index of nothing here, so as printed it excludes no entry and the "
        "diagonal is wrong (y_i(1 - y_i), not -y_i^2). With i for k it holds; the notes' own derivation "
        "uses -y_i y_j only off the diagonal.",
    ),
    _claim(
        id="mnist_notes/softmax-derivative-offdiagonal",
        location="Activation function (iii) Softmax, Derivative, corrected",
        statement=r"\frac{\partial y_i}{\partial z_j} = -y_i y_j \quad i \neq j",
        closed_form=cf.softmax_offdiagonal,
        reference=ref.softmax_offdiagonal,
        checked_against="off-diagonal entries of jax.jacfwd(softmax)",
        domain=Domain((_LOGITS,), dims=(_N,)),
        corrects="mnist_notes/softmax-derivative-as-printed",
        symmetries=(
            ("extra transpose", "the softmax Jacobian is symmetric: dy_i/dx_j = dy_j/dx_i"),
            ("one branch negated", "the diagonal branch is 0, and -0 = 0"),
        ),
    ),
    _claim(
        id="mnist_notes/cross-entropy-one-hot",
        location="Cross Entropy loss, the five-class example",
        statement=r"\text{Loss} = -[0 + \log \hat{y}_2 + 0 + 0 + 0] = -\log \hat{y}_2",
        closed_form=cf.cross_entropy_one_hot,
        reference=ref.cross_entropy,
        checked_against="L = -sum y log y_hat itself",
        domain=Domain((Arg("y_hat", ("n",), kind="probability"), Arg("y", ("n",), kind="one_hot")), dims=(_N,)),
        expected="conditional",
        reason="Only the true class's term survives when the target is one-hot; with soft targets "
        "every class contributes.",
        preconditions=("targets y are one-hot",),
        outside=Domain((Arg("y_hat", ("n",), kind="probability"), Arg("y", ("n",), kind="smoothed")), dims=(_N,)),
        symmetries=(
            ("swapped arguments", "the loss of a one-hot target, -log(y . y_hat), is symmetric in y and y_hat"),
        ),
    ),
    _claim(
        id="mnist_notes/mean-cross-entropy",
        location="Cross Entropy loss, for multiple samples",
        statement=r"L = \frac{L_1 + L_2 + \dots + L_n}{n} = \frac{\sum_{i=1}^n \log y_i}{n} + \frac{\sum_{i=1}^n \log y_{\bar{i}}}{n}",
        closed_form=cf.mean_cross_entropy_gradient_as_printed,
        reference=ref.mean_cross_entropy_gradient,
        checked_against="jax.grad of the mean over samples of -sum y log softmax(z), in every sample's logits",
        domain=_SAMPLES,
        expected="erratum",
        reason="The minus sign of the single-sample loss is gone, so the printed L is minus the mean "
        "cross entropy and descending it raises the loss; and a second sum over an index i-bar appears that "
        "(L_1 + ... + L_n)/n does not give.",
        note="Checked through its gradient in the logits. y_i is read as sample i's probability of its "
        "class, as in the five-class example; i-bar is defined nowhere, and its sum is left out.",
    ),
    _claim(
        id="mnist_notes/mean-cross-entropy-corrected",
        location="Cross Entropy loss, for multiple samples, corrected",
        statement=r"L = \frac{L_1 + \dots + L_n}{n} = -\frac{1}{n}\sum_{k=1}^n \sum_i y_{k,i} \log \hat{y}_{k,i},"
        r"\quad \frac{\partial L}{\partial z_k} = \frac{\hat{y}_k \sum_i y_{k,i} - y_k}{n}",
        closed_form=cf.mean_cross_entropy_gradient,
        reference=ref.mean_cross_entropy_gradient,
        checked_against="jax.grad of the mean over samples of -sum y log softmax(z), in every sample's logits",
        domain=_SAMPLES,
        corrects="mnist_notes/mean-cross-entropy",
    ),
    _claim(
        id="mnist_notes/output-delta",
        location="For Single Sample, boxed result",
        statement=r"\frac{dL}{dz_i} = \hat{y}_i - y_i",
        closed_form=cf.output_delta,
        reference=ref.output_delta,
        checked_against="jax.grad of -sum y log softmax(z) with respect to z",
        domain=Domain((_LOGITS, Arg("y", ("n",), kind="one_hot")), dims=(_N,)),
        expected="conditional",
        reason=_TARGETS_REASON,
        preconditions=_TARGETS_PRECONDITION,
        outside=Domain((_LOGITS, Arg("y", ("n",), kind="unnormalized")), dims=(_N,)),
        note="The notes write the prediction with a hat or a bar in turn; the prediction minus the target is meant.",
    ),
    _claim(
        id="mnist_notes/neuron-delta-sum",
        location="To calculate dL/dz_i for previous layer, Hence",
        statement=r"\frac{\partial L}{\partial z} = \left( \sum_{j=1}^n \frac{\partial L}{\partial z_j} w_j \right) \sigma'(z)",
        closed_form=cf.neuron_delta_sum,
        reference=ref.neuron_delta,
        checked_against="VJP of Z_next = w sigmoid(z) + B with cotangent S, one neuron z",
        domain=_ONE_NEURON,
        symmetries=(
            ("swapped arguments", "sum_j S_j w_j is symmetric in w and S"),
        ),
    ),
    _claim(
        id="mnist_notes/neuron-delta-matrix-form",
        location="To calculate dL/dz_i for previous layer, In matrix form",
        statement=r"\frac{\partial L}{\partial z} = (w^T)\, \sigma'(z)",
        closed_form=cf.neuron_delta_matrix_form_as_printed,
        reference=ref.neuron_delta,
        checked_against="VJP of Z_next = w sigmoid(z) + B with cotangent S, one neuron z feeding one",
        domain=Domain(_ONE_NEURON.args, dims=(("n", (1,)),)),
        expected="typo",
        reason="The delta vector S is missing: (w^T) sigma'(z) ignores the next layer's dL/dz_j. With S "
        "inserted, (w^T S) sigma'(z), it holds, and the notes' next display writes it so.",
        note="Checked where the next layer has one neuron: for more, the printed (w^T) sigma'(z) is a row "
        "vector, and the gradient of the one neuron z a number.",
    ),
    _claim(
        id="mnist_notes/neuron-delta-matrix-form-corrected",
        location="To calculate dL/dz_i for previous layer, In matrix form, corrected",
        statement=r"\frac{\partial L}{\partial z} = (w^T S)\, \sigma'(z)",
        closed_form=cf.neuron_delta_matrix_form,
        reference=ref.neuron_delta,
        checked_against="VJP of Z_next = w sigmoid(z) + B with cotangent S, one neuron z",
        domain=_ONE_NEURON,
        corrects="mnist_notes/neuron-delta-matrix-form",
        symmetries=(
            ("swapped arguments", "w^T S is symmetric in w and S"),
        ),
    ),
    _claim(
        id="mnist_notes/delta-recursion-matrix-form",
        location="For whole layer, (w^T S) sigma'(z)",
        statement=r"S_{prev} = (w^T S)\, \sigma'(z)",
        closed_form=cf.delta_recursion_as_printed,
        reference=ref.delta_recursion,
        checked_against="VJP of Z_next = W^T sigmoid(z) + B (the notes' layout) with cotangent S",
        domain=Domain(_RECURSION.args, dims=(("m", (2, 3, 4)), ("n", (2, 3, 4)))),
        expected="typo",
        reason="With each neuron's weights a column (Z = W^T X + B), dL/dx = W S, not W^T S: one "
        "transpose too many, and the notes' own W_2 S expansion, which 'matches with chain of derivative', "
        "drops it.",
        note="Checked with square weights, where W^T S has the right shape.",
    ),
    _claim(
        id="mnist_notes/delta-recursion-matrix-form-corrected",
        location="For whole layer, corrected: (W S) sigma'(z)",
        statement=r"S_{prev} = (W S) \odot \sigma'(z)",
        closed_form=cf.delta_recursion,
        reference=ref.delta_recursion,
        checked_against="VJP of Z_next = W^T sigmoid(z) + B with cotangent S",
        domain=_RECURSION,
        corrects="mnist_notes/delta-recursion-matrix-form",
    ),
    _claim(
        id="mnist_notes/delta-recursion-row-weights",
        location="For whole layer, 'May need to use W^T S if weights of neurons are row vector'",
        statement=r"S_{prev} = (W^T S)\, \sigma'(z) \quad (Z = W X + B)",
        closed_form=cf.delta_recursion_row_weights,
        reference=ref.delta_recursion_row_weights,
        checked_against="VJP of Z_next = W sigmoid(z) + B with cotangent S",
        domain=Domain(
            (Arg("z", ("m",), bound=20.0), Arg("W", ("n", "m"), bound=5.0), Arg("S", ("n",), bound=5.0)),
            dims=_RECURSION.dims,
        ),
    ),
    _claim(
        id="mnist_notes/network-gradients",
        location="For Single Sample to To calculate dL/db",
        statement=r"\frac{\partial L}{\partial w_i} = \left(\frac{\partial L}{\partial z_i}\right) a,\quad \frac{\partial L}{\partial b_i} = \frac{\partial L}{\partial z_i}",
        closed_form=cf.network_gradients,
        reference=ref.network_gradients,
        checked_against="jax.grad of the loss of input -> sigmoid -> softmax, every parameter",
        domain=Domain(_NETWORK_ARGS, dims=_NETWORK_DIMS),
        expected="conditional",
        reason=_TARGETS_REASON,
        preconditions=_TARGETS_PRECONDITION,
        outside=Domain(_NETWORK_ARGS, dims=_NETWORK_DIMS).with_kind("y", "unnormalized"),
    ),
    _claim(
        id="mnist_notes/gradient-descent-step",
        location="Gradient descent; In matrix form",
        statement=r"W = W - \alpha \nabla W,\quad B = B - \alpha \nabla B",
        closed_form=cf.gradient_descent_step,
        reference=ref.gradient_descent_step,
        checked_against="p - alpha jax.grad(L)(p), every parameter",
        domain=Domain((*_NETWORK_ARGS, _ALPHA), dims=_NETWORK_DIMS),
        descent=Descent(ref.network_loss, step="alpha"),
        expected="conditional",
        reason=_TARGETS_REASON,
        preconditions=_TARGETS_PRECONDITION,
        outside=Domain((*_NETWORK_ARGS, _ALPHA), dims=_NETWORK_DIMS).with_kind("y", "unnormalized"),
    ),
    _claim(
        id="mnist_notes/batch-gradient-descent-step",
        location="Batch gradient descent; Batch algorithm",
        statement=r"w = w - \alpha \left(\sum \frac{\partial L}{\partial w}\right),\ b = b - \alpha \left(\sum \frac{\partial L}{\partial b}\right),\ \frac{\partial L}{\partial z} \text{ not added}",
        closed_form=cf.batch_gradient_descent_step,
        reference=ref.batch_gradient_descent_step,
        checked_against="one step with jax.grad of the batch's total loss",
        domain=Domain(_BATCH_ARGS, dims=_BATCH_DIMS),
        descent=Descent(ref.batch_total_loss, step="alpha"),
        expected="conditional",
        reason=_TARGETS_REASON,
        preconditions=_TARGETS_PRECONDITION,
        outside=Domain(_BATCH_ARGS, dims=_BATCH_DIMS).with_kind("Y", "unnormalized"),
    ),
    _claim(
        id="mnist_notes/stochastic-epoch",
        location="Stochastic",
        statement=r"\text{for each sample: } \frac{\partial L}{\partial z}, \frac{\partial L}{\partial w}, \frac{\partial L}{\partial b};\ \text{update } w, b",
        closed_form=cf.stochastic_epoch,
        reference=ref.stochastic_epoch,
        checked_against="one update per sample with jax.grad at the current parameters",
        domain=Domain(_BATCH_ARGS, dims=_BATCH_DIMS),
        descent=Descent(ref.batch_total_loss, step="alpha"),
        expected="conditional",
        reason=_TARGETS_REASON,
        preconditions=_TARGETS_PRECONDITION,
        outside=Domain(_BATCH_ARGS, dims=_BATCH_DIMS).with_kind("Y", "unnormalized"),
    ),
)
