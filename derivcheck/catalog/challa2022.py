"""Claims of Nikhil Challa, "Math for Understanding Deep Neural Networks" (seed 001), in order."""

from __future__ import annotations

import functools

import derivations.challa2022 as cf
import reference.challa2022 as ref
from derivcheck.claims import Arg, Claim, Descent, Document, Domain

DOCUMENT = Document(
    key="challa2022",
    seed="001_557874b8e264224f.txt",
    title="Math for Understanding Deep Neural Networks",
    author="Nikhil Challa",
)

_claim = functools.partial(Claim, document=DOCUMENT)

_M = ("M", (1, 3, 6))
# In float16, logits within 7 of each other: y_hat / a, Eq. (12)'s first factor, stays below
# 65504 for targets up to 6 (e^-7 / 6 > 6 / 65504).
_LOGITS = Arg("a", ("M",), kind="logits", bound=30.0, float16_bound=3.5,
              float16_range="logits within 7 of each other: softmax outputs stay above 1.5e-4, so y_hat / a stays "
              "below 65504")
_SOFTMAX = Domain((_LOGITS,), dims=(_M,))
_ONE_HOT = Arg("y_hat", ("M",), kind="one_hot")
_UNNORMALIZED = Arg("y_hat", ("M",), kind="unnormalized")
_ANY_TARGETS = Domain((_LOGITS, _UNNORMALIZED), dims=(_M,))
_LAYER = Domain(
    (Arg("x_prev", ("P",), bound=5.0), Arg("W", ("P", "M"), bound=5.0), Arg("b", ("M",), bound=5.0)),
    dims=(_M, ("P", (1, 2, 4))),
)
_LAYER_BACK = Domain((*_LAYER.args, Arg("dA", ("M",), bound=5.0)), dims=_LAYER.dims)
_NETWORK_ARGS = (
    Arg("x1", ("M1",), bound=3.0),
    Arg("W2", ("M1", "M2"), bound=3.0),
    Arg("b2", ("M2",), bound=3.0),
    Arg("W3", ("M2", "M3"), bound=3.0),
    Arg("b3", ("M3",), bound=3.0),
    Arg("W4", ("M3", "M4"), bound=3.0),
    Arg("b4", ("M4",), bound=3.0),
    Arg("y_hat", ("M4",), kind="one_hot"),
)
_NETWORK_DIMS = (("M1", (1, 3, 2)), ("M2", (1, 2, 4)), ("M3", (1, 4, 3)), ("M4", (2, 3, 4)))
_NETWORK = Domain(_NETWORK_ARGS, dims=_NETWORK_DIMS)
_NETWORK_OUTSIDE = _NETWORK.with_kind("y_hat", "unnormalized")
_ETA = Arg("eta", (), kind="probability")
# Layer N-1 from its input x^{N-2}, and the last layer N with its dA^N given.
_DEEPER = Domain(
    (Arg("x_prev", ("P",), bound=3.0), Arg("W", ("P", "M1"), bound=3.0), Arg("b", ("M1",), bound=3.0),
     Arg("W_next", ("M1", "M"), bound=3.0), Arg("b_next", ("M",), bound=3.0), Arg("dA_next", ("M",), bound=3.0)),
    dims=(("P", (1, 2, 4)), ("M1", (1, 3, 2)), ("M", (2, 3, 4))),
)
_EXTREME = Domain((Arg("a", ("M",), kind="logits", bound=2000.0), _ONE_HOT), dims=(_M,))

_TARGETS_SUM_TO_ONE = "Uses sum_j y_hat_j = 1 (Eqs. (15)-(16)); with targets of another sum every gradient is off."

CLAIMS: tuple[Claim, ...] = (
    _claim(
        id="challa2022/eq1-batch-loss-gradient",
        location="Eq. (1), with Eq. (17)",
        statement=r"L = -\frac{1}{S} \sum_{i=1}^S \frac{1}{M} \sum_{j=1}^M \hat{y}_{j,k} \log y_{j,k}"
        r"\ \Rightarrow\ \frac{\partial L}{\partial a_{j,k}} = \frac{y_{j,k} - \hat{y}_{j,k}}{S M}",
        closed_form=cf.batch_loss_gradient,
        reference=ref.batch_loss_gradient,
        checked_against="jax.grad of Eq. (1) with respect to every sample's logits",
        domain=Domain((Arg("A", ("S", "M"), kind="logits", bound=30.0), Arg("Y_hat", ("S", "M"), kind="one_hot")),
                      dims=(("S", (1, 3, 4)), _M)),
        expected="conditional",
        reason="Each sample's term has gradient y - y_hat only for targets summing to 1 (Eq. (16)).",
        preconditions=("targets are one-hot (any summing to 1 will do)",),
        outside=Domain((Arg("A", ("S", "M"), kind="logits", bound=30.0),
                        Arg("Y_hat", ("S", "M"), kind="unnormalized")), dims=(("S", (1, 3, 4)), _M)),
        note="The inner sum of Eq. (1) writes the sample index as k where the outer i is meant "
        "(transcribed as meant); the gradient is not printed, it is (17) with (1)'s constants.",
    ),
    _claim(
        id="challa2022/eq5-softmax-derivative",
        location="Eq. (5)",
        statement=r"\frac{\partial y_{j_1}}{\partial a_{j_2}} = y_{j_2} \cdot (\delta_{j_2, j_1} - y_{j_1})",
        closed_form=cf.softmax_derivative,
        reference=ref.softmax_jacobian,
        checked_against="jax.jacfwd of softmax, row j1 = output j1",
        domain=_SOFTMAX,
        symmetries=(
            ("extra transpose", "the softmax Jacobian is symmetric: dy_i/dx_j = dy_j/dx_i"),
        ),
    ),
    _claim(
        id="challa2022/eq6-softmax-derivative-cases",
        location="Eq. (6)",
        statement=r"\begin{cases} y_{j_2} \cdot (1 - y_{j_1}) & j_1 = j_2 \\ y_{j_2} \cdot (-y_{j_1}) & j_1 \neq j_2 \end{cases}",
        closed_form=cf.softmax_derivative_cases,
        reference=ref.softmax_jacobian,
        checked_against="jax.jacfwd of softmax, row j1 = output j1",
        domain=_SOFTMAX,
        symmetries=(
            ("extra transpose", "the softmax Jacobian is symmetric: dy_i/dx_j = dy_j/dx_i"),
        ),
    ),
    _claim(
        id="challa2022/eq9-accumulation-weight-derivative",
        location="Eqs. (7)-(9)",
        statement=r"\frac{\partial a_j^n}{\partial w_{j',j}^n} = x_{j'}^{n-1}",
        closed_form=cf.accumulation_weight_derivative,
        reference=ref.accumulation_weight_derivative,
        checked_against="jax.jacfwd of a = W^T x + b with respect to W, entries [j, j', j]",
        domain=_LAYER,
        note="Eq. (7) writes w_{i,j} inside a sum over j', with i bound nowhere, so as printed it has no "
        "meaning to check; Eq. (8) writes w_{j',j}, which is checked.",
    ),
    _claim(
        id="challa2022/eq10-accumulation-bias-derivative",
        location="Eq. (10)",
        statement=r"\frac{\partial a_j^n}{\partial b_j^n} = 1",
        closed_form=cf.accumulation_bias_derivative_applied,
        reference=ref.accumulation_bias_derivative_applied,
        checked_against="diagonal of jax.jacfwd of a = W^T x + b with respect to b, times a drawn v",
        domain=Domain((*_LAYER.args, Arg("v", ("M",), kind="direction")), dims=_LAYER.dims),
        note="Checked as 1 * v_j for a drawn v: the derivative is the same at every point, and a check "
        "against a constant would pass any closed form returning it.",
        symmetries=(
            ("swapped arguments", "1 * v does not depend on x or b, the arguments swapped"),
        ),
    ),
    _claim(
        id="challa2022/eq11-loss-output-derivative",
        location="Eq. (11)",
        statement=r"\frac{\partial L}{\partial y} = - \sum_{j=1}^M \frac{\hat{y}_j}{y_j}",
        closed_form=cf.loss_output_derivative_as_printed,
        reference=ref.loss_output_derivative,
        checked_against="jax.grad of L = -sum y_hat log y with respect to y",
        domain=Domain((Arg("y", ("M",), kind="probability"), Arg("y_hat", ("M",), kind="simplex")), dims=(_M,)),
        expected="typo",
        reason="A sum over j where the derivative has one component per j: dL/dy_j = -y_hat_j / y_j. Without "
        "the sum it holds, and Eq. (12) uses it so, as the chain rule's terms.",
    ),
    _claim(
        id="challa2022/eq11-loss-output-derivative-corrected",
        location="Eq. (11), corrected",
        statement=r"\frac{\partial L}{\partial y_j} = -\frac{\hat{y}_j}{y_j}",
        closed_form=cf.loss_output_derivative,
        reference=ref.loss_output_derivative,
        checked_against="jax.grad of L = -sum y_hat log y with respect to y",
        domain=Domain((Arg("y", ("M",), kind="probability"), Arg("y_hat", ("M",), kind="simplex")), dims=(_M,)),
        corrects="challa2022/eq11-loss-output-derivative",
    ),
    _claim(
        id="challa2022/eq12-chain-rule-sum",
        location="Eq. (12)",
        statement=r"\frac{\partial L}{\partial y} \frac{\partial y}{\partial a_1^N} = - \sum_{j=1}^M \frac{\hat{y}_j}{y_j} \cdot \left( y_1 \cdot (\delta_{1,j} - y_j) \right)",
        closed_form=cf.chain_rule_sum,
        reference=ref.loss_logit_gradient,
        checked_against="jax.grad of -sum y_hat log softmax(a), targets of any sum",
        domain=_ANY_TARGETS,
        note="Checked for every component, not only the first.",
    ),
    _claim(
        id="challa2022/eq13-chain-rule-split",
        location="Eq. (13)",
        statement=r"= - \frac{\hat{y}_1}{y_1} \cdot \left( y_1 \cdot (1 - y_1) \right) - \sum_{j \neq 1} \frac{\hat{y}_j}{y_j} \cdot \left( y_1 \cdot (-y_j) \right)",
        closed_form=cf.chain_rule_split,
        reference=ref.loss_logit_gradient,
        checked_against="jax.grad of -sum y_hat log softmax(a), targets of any sum",
        domain=_ANY_TARGETS,
    ),
    _claim(
        id="challa2022/eq14-chain-rule-expanded",
        location="Eq. (14)",
        statement=r"= -\hat{y}_1 + \hat{y}_1 y_1 + \sum_{j \neq 1} \hat{y}_j y_1",
        closed_form=cf.chain_rule_expanded,
        reference=ref.loss_logit_gradient,
        checked_against="jax.grad of -sum y_hat log softmax(a), targets of any sum",
        domain=_ANY_TARGETS,
    ),
    _claim(
        id="challa2022/eq15-chain-rule-collected",
        location="Eq. (15)",
        statement=r"= y_1 \sum_{j=1}^M \hat{y}_j - \hat{y}_1",
        closed_form=cf.chain_rule_collected,
        reference=ref.loss_logit_gradient,
        checked_against="jax.grad of -sum y_hat log softmax(a), targets of any sum",
        domain=_ANY_TARGETS,
    ),
    _claim(
        id="challa2022/eq17-last-layer-delta",
        location="Eqs. (16)-(17)",
        statement=r"\frac{\partial L}{\partial a_j^N} = y_j - \hat{y}_j = dA_j^N",
        closed_form=cf.last_layer_delta,
        reference=ref.loss_logit_gradient,
        checked_against="jax.grad of -sum y_hat log softmax(a)",
        domain=Domain((_LOGITS, _ONE_HOT), dims=(_M,)),
        expected="conditional",
        reason="Eq. (16) drops the factor sum_j y_hat_j of Eq. (15): exact only for targets summing to 1.",
        preconditions=("targets are one-hot (any summing to 1 will do)",),
        outside=_ANY_TARGETS,
    ),
    _claim(
        id="challa2022/eq18-last-layer-weight-gradient",
        location="Eq. (18)",
        statement=r"\frac{\partial L}{\partial w_{i,j}^N} = \frac{\partial L}{\partial a_j^N} \frac{\partial a_j^N}{\partial w_{i,j}^N} = dA_j^N \cdot x_i^{N-1}",
        closed_form=cf.last_layer_weight_gradient,
        reference=ref.last_layer_weight_gradient,
        checked_against="VJP of a = W^T x + b with respect to W, cotangent dA",
        domain=_LAYER_BACK,
    ),
    _claim(
        id="challa2022/eq19-last-layer-bias-gradient",
        location="Eq. (19)",
        statement=r"\frac{\partial L}{\partial b_j^N} = dA_j^N",
        closed_form=cf.last_layer_bias_gradient,
        reference=ref.last_layer_bias_gradient,
        checked_against="VJP of a = W^T x + b with respect to b, cotangent dA",
        domain=_LAYER_BACK,
        symmetries=(
            ("swapped arguments", "dA does not depend on x or b, the arguments swapped"),
        ),
    ),
    _claim(
        id="challa2022/eq21-relu-derivative",
        location="Eqs. (20)-(21)",
        statement=r"\frac{\partial x_j^n}{\partial a_j^n} = \begin{cases} 1 & \text{if } a_j > 0 \\ 0 & \text{if } a_j \leq 0 \end{cases}",
        closed_form=cf.relu_derivative,
        reference=ref.relu_derivative,
        checked_against="JVP of max(a, 0); at a = 0 the one-sided derivatives 0 and 1",
        domain=Domain((Arg("a", ("M",), kinks=(0.0,)),), dims=(_M,)),
    ),
    _claim(
        id="challa2022/deeper-clubbed-term",
        location="Deeper layers, the clubbed term",
        statement=r"\frac{\partial L}{\partial x_1^{N-1}} = dA_1^N \cdot w_{1,1}^N + dA_2^N \cdot w_{1,2}^N",
        closed_form=cf.clubbed_term,
        reference=ref.clubbed_term,
        checked_against="VJP of a = W^T x + b with respect to x, cotangent dA",
        domain=_LAYER_BACK,
        note="Printed for node 1 of a two-node layer; checked for every node and width.",
        symmetries=(
            ("swapped arguments", "w dA does not depend on x or b, the arguments swapped"),
        ),
    ),
    _claim(
        id="challa2022/deeper-weight-gradient",
        location="Deeper layers, gradient for weight",
        statement=r"\frac{\partial L}{\partial w_{1,1}^{N-1}} = (dA_1^N \cdot w_{1,1}^N + dA_2^N \cdot w_{1,2}^N) \cdot (0 \text{ or } 1) \cdot x_1^{N-1} = dA_1^{N-1} \cdot x_1^{N-1}",
        closed_form=cf.deeper_weight_gradient_as_printed,
        reference=ref.deeper_weight_gradient_left,
        reference_right=ref.deeper_weight_gradient_right,
        checked_against="jax.grad in w^{N-1}_{1,1} of dA^N . a^N, a^N = w^N relu(w^{N-1} x^{N-2} + b) + b^N; "
        "at a hidden accumulation of exactly 0, both one-sided truths",
        domain=_DEEPER,
        expected="typo",
        reason="x_1^{N-1} is the output of the node the weight feeds; its input is x_1^{N-2} (w^n joins layer n-1 "
        "to layer n). With N-2 it holds, and Eq. (18) and the general formula use the input's superscript.",
        note="The printed two terms are summed over every node of layer N.",
    ),
    _claim(
        id="challa2022/deeper-weight-gradient-corrected",
        location="Deeper layers, gradient for weight, corrected",
        statement=r"\frac{\partial L}{\partial w_{1,1}^{N-1}} = dA_1^{N-1} \cdot x_1^{N-2}",
        closed_form=cf.deeper_weight_gradient,
        reference=ref.deeper_weight_gradient_left,
        reference_right=ref.deeper_weight_gradient_right,
        checked_against="jax.grad in w^{N-1}_{1,1} of dA^N . a^N; at a hidden accumulation of 0, both sides",
        domain=_DEEPER,
        corrects="challa2022/deeper-weight-gradient",
    ),
    _claim(
        id="challa2022/deeper-bias-gradient",
        location="Deeper layers, gradient for bias",
        statement=r"\frac{\partial L}{\partial b_1^N} = \frac{\partial L}{\partial a_1^{N-1}} \frac{\partial a_1^{N-1}}{\partial b_1^N} = dA_1^{N-1}",
        closed_form=cf.deeper_bias_gradient_as_printed,
        reference=ref.last_bias_gradient_left,
        reference_right=ref.last_bias_gradient_right,
        checked_against="jax.grad in b^N_1 of dA^N . a^N (the printed superscript)",
        domain=_DEEPER,
        expected="typo",
        reason="b_1^N is the last layer's bias, whose gradient is dA_1^N (Eq. (19)), not dA_1^{N-1}. With N-1 "
        "it holds, as the general formula dL/db_j^n = dA_j^n has it.",
    ),
    _claim(
        id="challa2022/deeper-bias-gradient-corrected",
        location="Deeper layers, gradient for bias, corrected",
        statement=r"\frac{\partial L}{\partial b_1^{N-1}} = dA_1^{N-1}",
        closed_form=cf.deeper_bias_gradient,
        reference=ref.deeper_bias_gradient_left,
        reference_right=ref.deeper_bias_gradient_right,
        checked_against="jax.grad in b^{N-1}_1 of dA^N . a^N; at a hidden accumulation of 0, both sides",
        domain=_DEEPER,
        corrects="challa2022/deeper-bias-gradient",
    ),
    _claim(
        id="challa2022/general-recursion-network",
        location="Generalizing the algorithm for all layers",
        statement=r"\frac{\partial L}{\partial w_{i,j}^n} = \left( \sum_{i'} dA_{i'}^{n+1} \cdot w_{j,i'}^{n+1} \right) \cdot (0 \text{ or } 1) \cdot x_i^{n-1},\quad \frac{\partial L}{\partial b_j^n} = dA_j^n",
        closed_form=cf.network_gradients,
        reference=ref.network_gradients_left,
        reference_right=ref.network_gradients_right,
        checked_against="jax.grad of the loss of input -> ReLU -> ReLU -> softmax, every parameter; "
        "at a hidden accumulation of exactly 0, the left- and right-sided truths",
        domain=_NETWORK,
        expected="conditional",
        reason=_TARGETS_SUM_TO_ONE,
        preconditions=("targets are one-hot (the last layer's dA is Eq. (17))",),
        outside=_NETWORK_OUTSIDE,
        note="The line prints 'dA_j^n x_i^n = (...) x_i^{n-1}': its middle form has x_i^n, the same "
        "superscript slip as the deeper layer's weight gradient (checked there as printed); the line's "
        "own last form is checked here.",
    ),
    _claim(
        id="challa2022/neat-trick-network",
        location="Neat trick",
        statement=r"dA_j^n := 0 \text{ without the summation where } a_j^n \leq 0",
        closed_form=cf.network_gradients_neat_trick,
        reference=ref.network_gradients_left,
        reference_right=ref.network_gradients_right,
        checked_against="jax.grad of the network's loss, every parameter (identical gradients)",
        domain=_NETWORK,
        expected="conditional",
        reason=_TARGETS_SUM_TO_ONE,
        preconditions=("targets are one-hot (the last layer's dA is Eq. (17))",),
        outside=_NETWORK_OUTSIDE,
    ),
    _claim(
        id="challa2022/update-step",
        location="Weight and bias change; what to store in every node",
        statement=r"\Delta w = -\eta \frac{\partial L}{\partial w},\ \Delta b = -\eta \frac{\partial L}{\partial b}\ \text{(all gradients from the original weights)}",
        closed_form=cf.update_step,
        reference=ref.update_step_left,
        reference_right=ref.update_step_right,
        checked_against="p - eta jax.grad(L)(p), every gradient at the original parameters",
        domain=Domain((*_NETWORK_ARGS, _ETA), dims=_NETWORK_DIMS),
        descent=Descent(ref.network_loss, step="eta"),
        expected="conditional",
        reason=_TARGETS_SUM_TO_ONE,
        preconditions=("targets are one-hot (the last layer's dA is Eq. (17))",),
        outside=Domain((*_NETWORK_OUTSIDE.args, _ETA), dims=_NETWORK_DIMS),
    ),
    _claim(
        id="challa2022/overflow-fix-scaled-input",
        location="§2, Fix for overflow issue",
        statement=r"a \leftarrow a \cdot \min\left(1, \frac{\text{limit}}{\max_j |a_j|}\right),\ \text{limit} = 709 \text{ (double)}, 88 \text{ (float)};\ dA = \mathrm{softmax}(a) - \hat{y}",
        closed_form=cf.last_layer_delta_scaled_input,
        reference=ref.loss_logit_gradient,
        checked_against="jax.grad of -sum y_hat log softmax(a) at the original, unscaled logits",
        domain=_EXTREME,
        expected="erratum",
        reason="Softmax is unchanged by a shift of its input, not by a scaling: scaled logits give "
        "another softmax and wrong gradients; and a logit at the limit leaves no headroom (the sum "
        "of exps can overflow, and 1/sum is subnormal, flushed to zero under XLA).",
        note="'Scaling' is read as multiplying by a factor; the stated limits 709 and 88 are "
        "ln of the largest double and float (709.78, 88.72), which a test checks.",
    ),
    _claim(
        id="challa2022/overflow-fix-shifted-input",
        location="§2, Fix for overflow issue, corrected",
        statement=r"y = \mathrm{softmax}(a - \max_j a_j),\ dA = y - \hat{y}",
        closed_form=cf.last_layer_delta_shifted_input,
        reference=ref.loss_logit_gradient,
        checked_against="jax.grad of -sum y_hat log softmax(a), at logits up to 2000 in size",
        domain=_EXTREME,
        corrects="challa2022/overflow-fix-scaled-input",
    ),
)
