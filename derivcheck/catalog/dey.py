"""Claims of Sourya Dey, "Basic Operations of Neural Networks" (seed 004), in order."""

from __future__ import annotations

import functools

import derivations.dey as cf
import reference.dey as ref
from derivcheck.claims import Arg, Claim, Descent, Document, Domain

DOCUMENT = Document(
    key="dey",
    seed="004_9b5fcb69ac3a4cce.txt",
    title="Basic Operations of Neural Networks",
    author="Sourya Dey",
)

_claim = functools.partial(Claim, document=DOCUMENT)

# Logits within about 40 of each other: softmax outputs stay normal floats in float32
# (e^-80 > 1.2e-38), so -y/a, which Eq. (3) divides by, stays finite; in float16, within 7.
_N = ("n", (1, 3, 6))
_SOFTMAX_IN_FLOAT16 = "logits within 7 of each other: softmax outputs stay normal float16 values (e^-7 / 6 > " \
    "6.1e-5), so y / a, which Eq. (3) divides by, stays below 65504"
_S = Arg("s", ("n",), kind="logits", bound=20.0, column=True, float16_bound=3.5, float16_range=_SOFTMAX_IN_FLOAT16)
_TARGETS = Arg("y", ("n",), kind="simplex", column=True)
_OUTPUT = Domain((_S, _TARGETS), dims=(_N,))
# |s| = |W a + b| <= 3 * 3 * 4 + 3 = 39 keeps the output layer's logits in the same range;
# in float16, 1 * 0.75 * 4 + 0.5 = 3.5.
_IN_FLOAT16 = functools.partial(Arg, float16_range=_SOFTMAX_IN_FLOAT16)
_LAYER_ARGS = (_IN_FLOAT16("a_prev", ("m",), bound=3.0, column=True, float16_bound=1.0),
               _IN_FLOAT16("W", ("n", "m"), bound=3.0, float16_bound=0.75),
               _IN_FLOAT16("b", ("n",), bound=3.0, column=True, float16_bound=0.5))
_LAYER = Domain(_LAYER_ARGS, dims=(_N, ("m", (1, 2, 4))))
_OUTPUT_LAYER = Domain((*_LAYER.args, _TARGETS), dims=_LAYER.dims)
# The hidden layer is a sigmoid, in (0, 1): |s2| <= 4 * 0.75 + 0.5 = 3.5 in float16.
_NETWORK_ARGS = (
    Arg("a0", ("n0",), bound=3.0, column=True),
    Arg("W1", ("n1", "n0"), bound=3.0),
    Arg("b1", ("n1",), bound=3.0, column=True),
    _IN_FLOAT16("W2", ("n2", "n1"), bound=3.0, float16_bound=0.75),
    _IN_FLOAT16("b2", ("n2",), bound=3.0, column=True, float16_bound=0.5),
    Arg("y", ("n2",), kind="simplex", column=True),
)
_NETWORK_DIMS = (("n0", (1, 3, 4)), ("n1", (1, 4, 2)), ("n2", (2, 3, 5)))
_NETWORK = Domain(_NETWORK_ARGS, dims=_NETWORK_DIMS)
_ETA = Arg("eta", (), kind="probability")
# A non-elementwise activation, a = tanh(A s): its H' = diag(1 - a^2) A is not symmetric, so
# Eqs. (4)-(5) and (13), stated for any activation, are checked where a transpose matters.
_MIXING = Arg("A", ("n", "n"), bound=2.0)
_ANY_ACTIVATION = Domain((Arg("s", ("n",), bound=5.0, column=True), _MIXING,
                          Arg("g", ("n",), bound=5.0, column=True)), dims=(("n", (1, 3, 5)),))
# Softmax's H' is symmetric, so a dropped transpose of it changes nothing; the claims
# stated for any activation check the transpose with a non-symmetric H'.
_SOFTMAX_H_SYMMETRIC = ("dropped transpose", "softmax's H' is symmetric (§3.2); with a non-symmetric H' the "
                        "transpose is checked, and this mutant killed, in dey/eq5-any-activation")
_ANY_ACTIVATION_NOTE = ("The document states Eqs. (4)-(5) and (13) for any activation; softmax and elementwise "
                        "activations have symmetric H', under which a lost transpose would pass. Here "
                        "a = tanh(A s), H' = diag(1 - a^2) A, and grad_a C = g is drawn.")

CLAIMS: tuple[Claim, ...] = (
    _claim(
        id="dey/sec1-gradient-steepest-ascent",
        location="§1, the gradient's physical interpretation",
        statement=r"\text{direction of maximum increase } \frac{\nabla_{\mathbf{x}} f}{\lVert \nabla_{\mathbf{x}} f \rVert},"
        r"\ \text{rate of increase in that direction } \lVert \nabla_{\mathbf{x}} f \rVert",
        closed_form=cf.steepest_ascent,
        reference=ref.steepest_ascent,
        checked_against="the unit direction of jax.grad of C(softmax(s)), and jax.jvp of C along it",
        domain=Domain((_S, Arg("y", ("n",), kind="unnormalized", column=True)), dims=(("n", (2, 3, 6)),)),
        note="f is the cost of Eq. (19), C(s) = -sum y ln softmax(s), with its gradient from Eq. (19); "
        "that no other unit direction is steeper is Cauchy-Schwarz, not a formula, and is not checked. "
        "One output is never checked: there the gradient is 0 and has no direction.",
    ),
    _claim(
        id="dey/eq1a-bias-jacobian",
        location="§2.2, after Eq. (6)",
        statement=r"\text{From (1a), } \frac{\partial \mathbf{s}^{(L)}}{\partial \mathbf{b}^{(L)}} = I",
        closed_form=cf.bias_jacobian_applied,
        reference=ref.bias_jacobian_applied,
        checked_against="jax.jvp of s = W a + b along a drawn direction v of b",
        domain=Domain((*_LAYER.args, Arg("v", ("n",), kind="direction", column=True)), dims=_LAYER.dims),
        note="Checked as I v for a drawn v: the Jacobian itself is the same at every point, and a check "
        "against a constant would pass any closed form returning it.",
        symmetries=(
            ("swapped arguments", "I v does not depend on a or b, the arguments swapped"),
        ),
    ),
    _claim(
        id="dey/eq12-input-jacobian",
        location="§2.2, after Eq. (12)",
        statement=r"\text{From (1a), } \frac{\partial \mathbf{s}^{(l+1)}}{\partial \mathbf{a}^{(l)}} = \mathbf{W}^{(l+1)}",
        closed_form=cf.input_jacobian,
        reference=ref.input_jacobian,
        checked_against="jax.jacfwd of s = W a + b with respect to a",
        domain=_LAYER,
        symmetries=(
            ("swapped arguments", "W does not depend on a or b, the arguments swapped"),
        ),
    ),
    _claim(
        id="dey/eq3-cost-derivative",
        location="§2.2, Eq. (3)",
        statement=r"\frac{\partial C}{\partial \mathbf{a}^{(L)}} = - \begin{bmatrix} \frac{y_1^{(L)}}{a_1^{(L)}} & "
        r"\dots & \frac{y_{N^{(L)}}^{(L)}}{a_{N^{(L)}}^{(L)}} \end{bmatrix}",
        closed_form=cf.cost_derivative,
        reference=ref.cost_derivative,
        checked_against="jax.grad of C = -sum y ln a, transposed to a row",
        domain=Domain((Arg("a", ("n",), kind="probability", column=True), _TARGETS), dims=(_N,)),
    ),
    _claim(
        id="dey/eq4-output-cost-derivative",
        location="§2.2, Eq. (4)",
        statement=r"\frac{\partial C}{\partial \mathbf{s}^{(L)}} = \frac{\partial C}{\partial \mathbf{a}^{(L)}} \mathbf{H}'^{(L)}",
        closed_form=cf.output_cost_derivative,
        reference=ref.output_cost_derivative,
        checked_against="jax.grad of C(softmax(s)) with respect to s, as a row",
        domain=_OUTPUT,
    ),
    _claim(
        id="dey/eq5-output-delta",
        location="§2.2, Eq. (5)",
        statement=r"\boldsymbol{\delta}^{(L)} = \nabla_{\mathbf{s}^{(L)}} C = \mathbf{H}'^{(L)T} \nabla_{\mathbf{a}^{(L)}} C",
        closed_form=cf.output_delta,
        reference=ref.output_delta,
        checked_against="jax.grad of C(softmax(s)) with respect to s",
        domain=_OUTPUT,
        symmetries=(_SOFTMAX_H_SYMMETRIC,),
    ),
    _claim(
        id="dey/eq4-any-activation",
        location="§2.2, Eq. (4), a non-elementwise activation",
        statement=r"\frac{\partial C}{\partial \mathbf{s}^{(L)}} = \frac{\partial C}{\partial \mathbf{a}^{(L)}} \mathbf{H}'^{(L)}",
        closed_form=cf.cost_derivative_any_activation,
        reference=ref.cost_derivative_any_activation,
        checked_against="jax.grad of C = g . tanh(A s) with respect to s, as a row",
        domain=_ANY_ACTIVATION,
        note=_ANY_ACTIVATION_NOTE,
    ),
    _claim(
        id="dey/eq5-any-activation",
        location="§2.2, Eq. (5), a non-elementwise activation",
        statement=r"\boldsymbol{\delta}^{(L)} = \nabla_{\mathbf{s}^{(L)}} C = \mathbf{H}'^{(L)T} \nabla_{\mathbf{a}^{(L)}} C",
        closed_form=cf.delta_any_activation,
        reference=ref.delta_any_activation,
        checked_against="jax.grad of C = g . tanh(A s) with respect to s",
        domain=_ANY_ACTIVATION,
        note=_ANY_ACTIVATION_NOTE,
    ),
    _claim(
        id="dey/eq7-output-bias-gradient",
        location="§2.2, Eqs. (6)-(7)",
        statement=r"\nabla_{\mathbf{b}^{(L)}} C = \boldsymbol{\delta}^{(L)}",
        closed_form=cf.output_bias_gradient,
        reference=ref.output_delta,
        checked_against="jax.grad of C with respect to b (equal to that with respect to s)",
        domain=_OUTPUT,
        symmetries=(_SOFTMAX_H_SYMMETRIC,),
    ),
    _claim(
        id="dey/eq10-weight-derivative-tensor",
        location="§2.2, Eqs. (9)-(10)",
        statement=r"\left(\frac{\partial \mathbf{s}^{(L)}}{\partial \mathbf{W}^{(L)}}\right)_{jk} = a_j^{(L-1)} \mathbf{e}_k",
        closed_form=cf.weight_derivative_tensor,
        reference=ref.weight_derivative_tensor,
        checked_against="jax.jacfwd of s = W a + b with respect to W, indexed [j, k, i]",
        domain=_LAYER,
        note="The outer matrix is N(L-1) x N(L): entry (j, k) is the derivative of s with "
        "respect to W_kj, a column with a_j at location k.",
    ),
    _claim(
        id="dey/eq11-output-weight-derivative",
        location="§2.2, before Eq. (11)",
        statement=r"\frac{\partial C}{\partial \mathbf{W}^{(L)}} = \mathbf{a}^{(L-1)} \boldsymbol{\delta}^{(L)T}",
        closed_form=cf.output_weight_derivative,
        reference=ref.output_weight_derivative,
        checked_against="jax.grad of C(softmax(W a + b)) with respect to W, transposed",
        domain=_OUTPUT_LAYER,
        symmetries=(_SOFTMAX_H_SYMMETRIC,),
    ),
    _claim(
        id="dey/eq11-output-weight-gradient",
        location="§2.2, Eq. (11)",
        statement=r"\nabla_{\mathbf{W}^{(L)}} C = \boldsymbol{\delta}^{(L)} \mathbf{a}^{(L-1)T}",
        closed_form=cf.output_weight_gradient,
        reference=ref.output_weight_gradient,
        checked_against="jax.grad of C(softmax(W a + b)) with respect to W",
        domain=_OUTPUT_LAYER,
        symmetries=(_SOFTMAX_H_SYMMETRIC,),
    ),
    _claim(
        id="dey/eq13-delta-recursion",
        location="§2.2, Eqs. (12)-(13)",
        statement=r"\boldsymbol{\delta}^{(l)} = \mathbf{H}'^{(l)T} \mathbf{W}^{(l+1)T} \boldsymbol{\delta}^{(l+1)}",
        closed_form=cf.delta_recursion,
        reference=ref.delta_recursion,
        checked_against="VJP of s^(l+1) = W^(l+1) sigmoid(s^(l)) with cotangent delta^(l+1)",
        domain=Domain(
            (Arg("s", ("n",), bound=20.0, column=True), Arg("W_next", ("m", "n"), bound=5.0),
             Arg("delta_next", ("m",), bound=5.0, column=True)),
            dims=(_N, ("m", (1, 2, 4))),
        ),
        note="h is the sigmoid here; the document leaves the hidden activation open.",
    ),
    _claim(
        id="dey/eq13-any-activation",
        location="§2.2, Eqs. (12)-(13), a non-elementwise activation",
        statement=r"\boldsymbol{\delta}^{(l)} = \mathbf{H}'^{(l)T} \mathbf{W}^{(l+1)T} \boldsymbol{\delta}^{(l+1)}",
        closed_form=cf.delta_recursion_any_activation,
        reference=ref.delta_recursion_any_activation,
        checked_against="VJP of s^(l+1) = W^(l+1) tanh(A s^(l)) with cotangent delta^(l+1)",
        domain=Domain((Arg("s", ("n",), bound=5.0, column=True), _MIXING, Arg("W_next", ("m", "n"), bound=5.0),
                       Arg("delta_next", ("m",), bound=5.0, column=True)), dims=(("n", (1, 3, 5)), ("m", (1, 2, 4)))),
        note=_ANY_ACTIVATION_NOTE,
    ),
    _claim(
        id="dey/summary-step4-weight-gradient",
        location="§2.2, four-step summary, step 4",
        statement=r"\nabla_{\mathbf{W}^{(l)}} C = \boldsymbol{\delta}^{(L)} \mathbf{a}^{(L-1)T} \quad \forall l",
        closed_form=cf.summary_first_layer_weight_gradient_as_printed,
        reference=ref.first_layer_weight_gradient,
        checked_against="jax.grad of the two-layer network's cost with respect to W1",
        domain=Domain(_NETWORK_ARGS, dims=(("n0", (2, 3, 4)), ("n1", (2, 3, 4)), ("n2", (2, 3, 4)))),
        expected="typo",
        reason="Superscript L where l is meant: delta^(L) a^(L-1)T is the last layer's gradient, wrong for "
        "every other layer (and of the wrong shape unless all widths agree). With l it holds: it is Eq. (11), "
        "which the document derives for L and, in its words, only needs delta^(l) for every other layer.",
        note="Checked on the first of two layers, with all widths equal so that the printed "
        "formula has the shape of W1.",
    ),
    _claim(
        id="dey/summary-network-gradients",
        location="§2.2, four-step summary, step 4 corrected",
        statement=r"\boldsymbol{\delta}^{(L)} = \mathbf{H}'^{(L)T} \nabla_{\mathbf{a}^{(L)}} C,\ "
        r"\boldsymbol{\delta}^{(l)} = \mathbf{H}'^{(l)T} \mathbf{W}^{(l+1)T} \boldsymbol{\delta}^{(l+1)},\ "
        r"\nabla_{\mathbf{b}^{(l)}} C = \boldsymbol{\delta}^{(l)},\ "
        r"\nabla_{\mathbf{W}^{(l)}} C = \boldsymbol{\delta}^{(l)} \mathbf{a}^{(l-1)T}",
        closed_form=cf.summary_gradients,
        reference=ref.network_gradients,
        checked_against="jax.grad of the cost of input -> sigmoid layer -> softmax layer, every parameter",
        domain=_NETWORK,
        corrects="dey/summary-step4-weight-gradient",
    ),
    _claim(
        id="dey/bias-trick-augmented-weight-gradient",
        location="§2.2, after the summary (augmented weights)",
        statement=r"\nabla_{[\mathbf{W}\ \mathbf{b}]} C = \boldsymbol{\delta}^{(L)} [\mathbf{a}^{(L-1)T}\ 1]",
        closed_form=cf.augmented_weight_gradient,
        reference=ref.augmented_weight_gradient,
        checked_against="jax.grad of C(softmax([W b] [a; 1])) with respect to [W b]",
        domain=_OUTPUT_LAYER,
        symmetries=(_SOFTMAX_H_SYMMETRIC,),
    ),
    _claim(
        id="dey/eq14-gradient-descent-step",
        location="§2.3, Eq. (14)",
        statement=r"\mathbf{p} \leftarrow \mathbf{p} - \eta \nabla_{\mathbf{p}} C",
        closed_form=cf.gradient_descent_step,
        reference=ref.gradient_descent_step,
        checked_against="p - eta jax.grad(C)(p) for every parameter of the two-layer network",
        domain=Domain((*_NETWORK_ARGS, _ETA), dims=_NETWORK_DIMS),
        descent=Descent(ref.network_cost, step="eta"),
    ),
    _claim(
        id="dey/eq15-minibatch-step",
        location="§2.3, Eq. (15)",
        statement=r"\mathbf{p} \leftarrow \mathbf{p} - \frac{\eta}{M} \sum_{i=1}^M (\nabla_{\mathbf{p}} C)^{[i]}",
        closed_form=cf.minibatch_step,
        reference=ref.minibatch_step,
        checked_against="p - eta jax.grad of the mean cost over the minibatch",
        domain=Domain(
            (Arg("A0", ("M", "n0"), bound=3.0, column=True), *_NETWORK_ARGS[1:5],
             Arg("Y", ("M", "n2"), kind="simplex", column=True), _ETA),
            dims=(("M", (1, 3, 4)), *_NETWORK_DIMS),
        ),
        descent=Descent(ref.minibatch_mean_cost, step="eta"),
    ),
    _claim(
        id="dey/eq17-elementwise-activation-jacobian",
        location="§3.1, Eq. (17)",
        statement=r"\mathbf{H}' = \begin{bmatrix} h'(s_1) & & 0 \\ & \ddots & \\ 0 & & h'(s_N) \end{bmatrix}",
        closed_form=cf.elementwise_derivative_matrix,
        reference=ref.sigmoid_jacobian,
        checked_against="jax.jacfwd of the elementwise sigmoid",
        domain=Domain((Arg("s", ("n",), bound=50.0, column=True),), dims=(_N,)),
        note="h is the sigmoid here; the claim is about any elementwise h.",
        symmetries=(
            ("extra transpose", "H' of an elementwise activation is diagonal"),
        ),
    ),
    _claim(
        id="dey/eq18-softmax-jacobian",
        location="§3.2, Eq. (18) and after",
        statement=r"\frac{\partial a_i}{\partial s_i} = \frac{k_i(k - k_i)}{k^2},\quad "
        r"\frac{\partial a_i}{\partial s_j} = -\frac{k_i k_j}{k^2}",
        closed_form=cf.softmax_derivative_matrix,
        reference=ref.softmax_jacobian,
        checked_against="jax.jacfwd of softmax, row i = output i",
        domain=Domain((_S,), dims=(_N,)),
        symmetries=(
            ("extra transpose", "the softmax Jacobian is symmetric: dy_i/dx_j = dy_j/dx_i"),
        ),
    ),
    _claim(
        id="dey/eq18-softmax-jacobian-symmetric",
        location="§3.2, after Eq. (18)",
        statement=r"\frac{\partial a_i}{\partial s_j} = \frac{\partial a_j}{\partial s_i}: "
        r"\mathbf{H}' \text{ is symmetric}",
        closed_form=cf.softmax_derivative_matrix_transposed,
        reference=ref.softmax_jacobian,
        checked_against="jax.jacfwd of softmax, compared with the transpose of Eq. (18)'s matrix",
        domain=Domain((_S,), dims=(_N,)),
        symmetries=(
            ("dropped transpose", "the claim is that H' is symmetric"),
            ("extra transpose", "the claim is that H' is symmetric"),
        ),
    ),
    _claim(
        id="dey/eq19-output-delta",
        location="§3.2, Eq. (19)",
        statement=r"\boldsymbol{\delta} = \mathbf{H}' \nabla_{\mathbf{a}} C = "
        r"\left(a_i \sum_{j=1}^N y_j\right) - y_i",
        closed_form=cf.output_delta_general,
        reference=ref.output_delta,
        checked_against="jax.grad of C(softmax(s)) with respect to s, for any positive targets",
        domain=Domain((_S, Arg("y", ("n",), kind="unnormalized", column=True)), dims=(_N,)),
        note="Holds for targets of any sum, normalised or not.",
    ),
    _claim(
        id="dey/eq19-one-hot-delta",
        location="§3.2, after Eq. (19)",
        statement=r"\boldsymbol{\delta} = \mathbf{a} - \mathbf{y}",
        closed_form=cf.output_delta_one_hot,
        reference=ref.output_delta,
        checked_against="jax.grad of C(softmax(s)) with respect to s",
        domain=Domain((_S, Arg("y", ("n",), kind="one_hot", column=True)), dims=(_N,)),
        expected="conditional",
        reason="Follows from Eq. (19) only when the targets sum to 1 (the document states it "
        "for one-hot outputs); in general delta = a sum(y) - y.",
        preconditions=("targets y are one-hot (any targets summing to 1 will do)",),
        outside=Domain((_S, Arg("y", ("n",), kind="unnormalized", column=True)), dims=(_N,)),
    ),
)
