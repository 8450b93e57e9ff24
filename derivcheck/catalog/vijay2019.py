"""Claims of Aravind H. Vijay, "Deriving Neural Network Gradients" (seed 002), in order."""

from __future__ import annotations

import functools

import derivations.vijay2019 as cf
import reference.vijay2019 as ref
from derivcheck.claims import Arg, Claim, Document, Domain

DOCUMENT = Document(
    key="vijay2019",
    seed="002_ff98685daa51327f.txt",
    title="Deriving Neural Network Gradients",
    author="Aravind H. Vijay",
)

_claim = functools.partial(Claim, document=DOCUMENT)

# Softsign is not twice differentiable at 0: every activation input carries that kink,
# so exact zeros are always among the inputs and are judged between the one-sided values.
_KINK = (0.0,)
_B, _Z = ("b", (1, 3, 5)), ("z", (1, 2, 3))

_NEGATIVE = Domain((Arg("x", ("n",), kind="negative"),), dims=(("n", (1, 4, 9)),))
_NONNEGATIVE = Domain((Arg("x", ("n",), kind="nonnegative", kinks=_KINK),), dims=(("n", (1, 4, 9)),))
_ACTIVATION = Domain(
    (Arg("I1", ("b", "y"), kinks=_KINK), Arg("DO1", ("b", "y"), bound=10.0)),
    dims=(_B, ("y", (1, 4, 2))),
)
_LINEAR = Domain(
    (
        Arg("I1", ("b", "x"), bound=10.0),
        Arg("I2", ("y", "x"), bound=10.0),
        Arg("I3", ("y",), bound=10.0),
        Arg("DO1", ("b", "y"), bound=10.0),
    ),
    dims=(_B, ("x", (1, 2, 4)), ("y", (1, 4, 3))),
)
_ACTIVATION_TANGENTS = Domain(
    (
        Arg("I1", ("b", "y"), kinks=_KINK),
        Arg("ID1", ("b", "z", "y"), bound=10.0),
        Arg("DO1", ("b", "y"), bound=10.0),
        Arg("DOD1", ("b", "z", "y"), bound=10.0),
    ),
    dims=(_B, _Z, ("y", (1, 4, 2))),
)
_LINEAR_TANGENTS_FORWARD = Domain(
    (
        Arg("I1", ("b", "x"), bound=10.0),
        Arg("ID1", ("b", "z", "x"), bound=10.0),
        Arg("I2", ("y", "x"), bound=10.0),
        Arg("I3", ("y",), bound=10.0),
    ),
    dims=(_B, _Z, ("x", (1, 2, 4)), ("y", (1, 4, 3))),
)
_LINEAR_TANGENTS = Domain(
    (
        *_LINEAR_TANGENTS_FORWARD.args,
        Arg("DO1", ("b", "y"), bound=10.0),
        Arg("DOD1", ("b", "z", "y"), bound=10.0),
    ),
    dims=_LINEAR_TANGENTS_FORWARD.dims,
)
# The squared weight gradients, summed over the batch, reach 1.8e5 at cotangents of 10: past
# float16's 65504. In float16 the cotangents are at most 3 (1.6e4).
_SQUARED_COTANGENTS_IN_FLOAT16 = functools.partial(
    Arg, bound=10.0, float16_bound=3.0,
    float16_range="the squared weight gradients summed over the batch stay below 65504")
_LINEAR_TANGENTS_SQUARED = Domain(
    (
        *_LINEAR_TANGENTS_FORWARD.args,
        _SQUARED_COTANGENTS_IN_FLOAT16("DO1", ("b", "y")),
        _SQUARED_COTANGENTS_IN_FLOAT16("DOD1", ("b", "z", "y")),
    ),
    dims=_LINEAR_TANGENTS_FORWARD.dims,
)
# In float16 every input is at most 1.5: at 5, the per-sample squared gradients summed over
# the batch reach 1.5e8, past float16's 65504; at 1.5, 1.3e4.
_SQUARES_IN_FLOAT16 = functools.partial(
    Arg, float16_range="the squared gradients summed over the batch stay below 65504 (1.3e4; 1.5e8 at 5)")
_NETWORK = Domain(
    (
        _SQUARES_IN_FLOAT16("I0", ("b", "x"), bound=5.0, float16_bound=1.5),
        _SQUARES_IN_FLOAT16("ID0", ("b", "z", "x"), bound=5.0, float16_bound=1.5),
        _SQUARES_IN_FLOAT16("W1", ("h", "x"), bound=5.0, float16_bound=1.5),
        _SQUARES_IN_FLOAT16("c1", ("h",), bound=5.0, float16_bound=1.5),
        _SQUARES_IN_FLOAT16("W2", ("y", "h"), bound=5.0, float16_bound=1.5),
        _SQUARES_IN_FLOAT16("c2", ("y",), bound=5.0, float16_bound=1.5),
        _SQUARES_IN_FLOAT16("DO", ("b", "y"), bound=5.0, float16_bound=1.5),
        _SQUARES_IN_FLOAT16("DOD", ("b", "z", "y"), bound=5.0, float16_bound=1.5),
    ),
    dims=(_B, ("z", (1, 2, 2)), ("x", (1, 3, 2)), ("h", (1, 2, 4)), ("y", (1, 3, 2))),
)

_SUM_NOTE = "An index on the right and not on the left is summed, as everywhere in the document."

CLAIMS: tuple[Claim, ...] = (
    _claim(
        id="vijay2019/sec1.1-softsign-rewrites-negative",
        location="§1.1, softsign, branch x < 0",
        statement=r"\sigma[x] = \frac{x}{1 + |x|};\ x < 0 \Rightarrow \sigma[x] = \frac{x}{1 - x} = \frac{1}{1 - x} - 1 = (1 - x)^{-1} - 1",
        closed_form=cf.softsign_rewrites_negative_branch,
        reference=ref.softsign_rewrites_negative_branch,
        checked_against="x / (1 + |x|) itself, for x < 0",
        domain=_NEGATIVE,
    ),
    _claim(
        id="vijay2019/sec1.1-softsign-rewrites-nonnegative",
        location="§1.1, softsign, branch x ≥ 0",
        statement=r"x \geq 0 \Rightarrow \sigma[x] = \frac{x}{1 + x} = 1 - \frac{1}{1 + x} = 1 - (1 + x)^{-1}",
        closed_form=cf.softsign_rewrites_nonnegative_branch,
        reference=ref.softsign_rewrites_nonnegative_branch,
        checked_against="x / (1 + |x|) itself, for x ≥ 0",
        domain=_NONNEGATIVE,
    ),
    _claim(
        id="vijay2019/sec1.1-softsign-first-derivative-negative",
        location="§1.1, softsign, branch x < 0",
        statement=r"x < 0 \Rightarrow \sigma'[x] = \frac{1}{(1 - x)^2}",
        closed_form=cf.softsign_first_derivative_negative_branch,
        reference=ref.softsign_first_derivative,
        checked_against="JVP of x / (1 + |x|), elementwise, for x < 0",
        domain=_NEGATIVE,
    ),
    _claim(
        id="vijay2019/sec1.1-softsign-first-derivative-nonnegative",
        location="§1.1, softsign, branch x ≥ 0",
        statement=r"x \geq 0 \Rightarrow \sigma'[x] = (1 + x)^{-2} = \frac{1}{(1 + x)^2}",
        closed_form=cf.softsign_first_derivative_nonnegative_branch,
        reference=ref.softsign_first_derivative,
        checked_against="JVP of x / (1 + |x|), elementwise, for x ≥ 0",
        domain=_NONNEGATIVE,
    ),
    _claim(
        id="vijay2019/sec1.1-softsign-second-derivative-negative",
        location="§1.1, softsign, branch x < 0",
        statement=r"x < 0 \Rightarrow \sigma''[x] = 2(1 - x)^{-3} = \frac{2}{(1 - x)^3}",
        closed_form=cf.softsign_second_derivative_negative_branch,
        reference=ref.softsign_second_derivative,
        checked_against="JVP of the JVP of x / (1 + |x|), elementwise, for x < 0",
        domain=_NEGATIVE,
    ),
    _claim(
        id="vijay2019/sec1.1-softsign-second-derivative-nonnegative",
        location="§1.1, softsign, branch x ≥ 0",
        statement=r"x \geq 0 \Rightarrow \sigma''[x] = -2(1 + x)^{-3} = \frac{-2}{(1 + x)^3}",
        closed_form=cf.softsign_second_derivative_nonnegative_branch,
        reference=ref.softsign_second_derivative,
        checked_against="JVP of the JVP of x / (1 + |x|); at x = 0 the one-sided values +2 and -2",
        domain=_NONNEGATIVE,
        note="At x = 0, sigma'' jumps from +2 to -2; the branch's -2 is the right-sided value.",
    ),
    _claim(
        id="vijay2019/sec1.1-activation-input-gradient",
        location="§1.1, first display, last line",
        statement=r"[(DI1)_{by}] = [(DO1)_{by}][\sigma'\{(I1)_{by}\}]",
        closed_form=cf.activation_input_gradient,
        reference=ref.activation_input_gradient,
        checked_against="VJP of softsign",
        domain=_ACTIVATION,
    ),
    _claim(
        id="vijay2019/sec1.2-linear-input-gradient",
        location="§1.2, (DI1)",
        statement=r"(DI1)_{bx} = (DO1)_{by}(I2)_{yx} \Rightarrow (DI1) = (DO1)(I2)",
        closed_form=cf.linear_input_gradient,
        reference=ref.linear_input_gradient,
        checked_against="VJP of O1 = I1 I2^T + I3 with respect to I1",
        domain=_LINEAR,
    ),
    _claim(
        id="vijay2019/sec1.2-linear-weight-gradient",
        location="§1.2, (DI2)",
        statement=r"(DI2)_{yx} = (DO1)_{by}(I1)_{bx}, \quad (DI2)_{yx} = (DO1)^T (I1)",
        closed_form=cf.linear_weight_gradient,
        reference=ref.linear_weight_gradient,
        checked_against="VJP of O1 = I1 I2^T + I3 with respect to I2 (the batch gradient)",
        domain=_LINEAR,
    ),
    _claim(
        id="vijay2019/sec1.2-linear-weight-gradient-per-sample-sum",
        location="§1.2, (DI2), summed over b",
        statement=r"(DI2)_{yx} = \sum_b (DO1)_{by}(I1)_{bx}",
        closed_form=cf.linear_weight_gradient,
        reference=ref.linear_weight_gradient_per_sample_sum,
        checked_against="sum over b of jax.vmap of each sample's own VJP",
        domain=_LINEAR,
        note="The batch gradient is the sum of the per-sample gradients.",
    ),
    _claim(
        id="vijay2019/sec1.2-linear-bias-gradient",
        location="§1.2, (DI3)",
        statement=r"(DI3)_y = (DO1)_{by}",
        closed_form=cf.linear_bias_gradient,
        reference=ref.linear_bias_gradient,
        checked_against="VJP of O1 = I1 I2^T + I3 with respect to I3",
        domain=_LINEAR,
        note=_SUM_NOTE,
        symmetries=(
            ("swapped arguments", "sum_b DO1 does not depend on I1 or I2, the arguments swapped"),
        ),
    ),
    _claim(
        id="vijay2019/sec1.2-linear-weight-gradient-squared",
        location="§1.2, (DI2^2)",
        statement=r"(DI2^2)_{yx} \equiv (DO1^2)_{by}(I1^2)_{bx}, \quad (DI2^2) \equiv (DO1^{2^T})(I1^2)",
        closed_form=cf.linear_weight_gradient_squared,
        reference=ref.linear_weight_gradient_squared,
        checked_against="sum over b of the squared per-sample gradients (jax.vmap of VJPs)",
        domain=_LINEAR,
        note="Read as the batch sum of squared per-sample gradients.",
    ),
    _claim(
        id="vijay2019/sec1.2-linear-bias-gradient-squared",
        location="§1.2, (DI3^2)",
        statement=r"(DI3^2)_y \equiv (DO1^2)_{by}",
        closed_form=cf.linear_bias_gradient_squared,
        reference=ref.linear_bias_gradient_squared,
        checked_against="sum over b of the squared per-sample gradients (jax.vmap of VJPs)",
        domain=_LINEAR,
        symmetries=(
            ("swapped arguments", "sum_b DO1^2 does not depend on I1 or I2, the arguments swapped"),
        ),
    ),
    _claim(
        id="vijay2019/sec2.1-activation-tangent-output",
        location="§2.1, first display, (OD1)",
        statement=r"[(OD1)_{bzy}] = [\sigma'\{(I1)_{by}\}][(ID1)_{bzy}]",
        closed_form=cf.activation_tangent_output,
        reference=ref.activation_tangent_output,
        checked_against="jax.jvp of softsign along each direction z",
        domain=Domain(_ACTIVATION_TANGENTS.args[:2], dims=_ACTIVATION_TANGENTS.dims),
    ),
    _claim(
        id="vijay2019/sec2.1-activation-input-gradient",
        location="§2.1, second display, (DI1)",
        statement=r"[(DI1)_{by}] = [(DOD1)_{bzy}][\sigma''\{(I1)_{by}\}][(ID1)_{bzy}] "
        r"+ [(DO1)_{by}][\sigma'\{(I1)_{by}\}]",
        closed_form=cf.activation_input_gradient_double,
        reference=ref.activation_input_gradient_double,
        checked_against="jax.grad of sum(DO1 O1) + sum(DOD1 OD1), OD1 by jax.jvp (double backprop)",
        domain=_ACTIVATION_TANGENTS,
        note="The sigma'' term sums over z. " + _SUM_NOTE,
    ),
    _claim(
        id="vijay2019/sec2.1-activation-tangent-gradient",
        location="§2.1, second display, (DID1)",
        statement=r"[(DID1)_{bzy}] = [(DOD1)_{bzy}][\sigma'\{(I1)_{by}\}]",
        closed_form=cf.activation_tangent_gradient,
        reference=ref.activation_tangent_gradient,
        checked_against="jax.grad with respect to ID1 of sum(DO1 O1) + sum(DOD1 OD1)",
        domain=_ACTIVATION_TANGENTS,
    ),
    _claim(
        id="vijay2019/sec2.2-linear-tangent-output",
        location="§2.2, first display, (OD1)_bzy",
        statement=r"[(OD1)_{bzy}] = [(I2)_{yx}][(ID1)_{bzx}]",
        closed_form=cf.linear_tangent_output,
        reference=ref.linear_tangent_output,
        checked_against="jax.jvp of the linear layer along each direction z",
        domain=_LINEAR_TANGENTS_FORWARD,
    ),
    _claim(
        id="vijay2019/sec2.2-linear-tangent-output-matrix",
        location="§2.2, first display, (OD1)_b",
        statement=r"[(OD1)_b] = [(ID1)_b][(I2)^T]",
        closed_form=cf.linear_tangent_output_matrix,
        reference=ref.linear_tangent_output,
        checked_against="jax.jvp of the linear layer along each direction z",
        domain=_LINEAR_TANGENTS_FORWARD,
    ),
    _claim(
        id="vijay2019/sec2.2-linear-tangent-gradient",
        location="§2.2, (DID1)",
        statement=r"[(DID1)_{bzx}] = +[(DOD1)_{bzy}][(I2)_{yx}]",
        closed_form=cf.linear_tangent_gradient,
        reference=ref.linear_tangent_gradient,
        checked_against="jax.grad with respect to ID1 of sum(DO1 O1) + sum(DOD1 OD1)",
        domain=_LINEAR_TANGENTS,
    ),
    _claim(
        id="vijay2019/sec2.2-linear-weight-gradient",
        location="§2.2, (DI2), index form",
        statement=r"[(DI2)_{yx}] = +[(DOD1)_{bzy}][(ID1)_{bzx}] + [(DO1)_{by}][(I1)_{bx}]",
        closed_form=cf.linear_weight_gradient_double,
        reference=ref.linear_weight_gradient_double,
        checked_against="jax.grad with respect to I2 of sum(DO1 O1) + sum(DOD1 OD1)",
        domain=_LINEAR_TANGENTS,
        note=_SUM_NOTE,
    ),
    _claim(
        id="vijay2019/sec2.2-linear-weight-gradient-matrix",
        location="§2.2, (DI2), matrix form",
        statement=r"[(DI2)] = [(DO1)^T][(I1)] + \left[\left((DOD1)_b^T\right)\right][(ID1)_b]",
        closed_form=cf.linear_weight_gradient_double_matrix,
        reference=ref.linear_weight_gradient_double,
        checked_against="jax.grad with respect to I2 of sum(DO1 O1) + sum(DOD1 OD1)",
        domain=_LINEAR_TANGENTS,
        note="The second term is summed over b.",
    ),
    _claim(
        id="vijay2019/sec2.2-linear-weight-gradient-squared",
        location="§2.2, (DI2)^2",
        statement=r"[(DI2)_{yx}^2] = +\sum_b \left(\sum_z [(DOD1)_{bzy}][(ID1)_{bzx}]\right)^2 "
        r"+ [(DO1)_{by}][(I1)_{bx}]",
        closed_form=cf.linear_weight_gradient_squared_double_as_printed,
        reference=ref.linear_weight_gradient_squared_double,
        checked_against="sum over b of squared per-sample jax.grad of the double-backprop loss",
        domain=_LINEAR_TANGENTS_SQUARED,
        expected="erratum",
        reason="Squares only the tangent part and adds the output part unsquared: a sample's "
        "gradient is the sum of both parts, and that sum must be squared, cross term included.",
    ),
    _claim(
        id="vijay2019/sec2.2-linear-weight-gradient-squared-corrected",
        location="§2.2, (DI2)^2, corrected",
        statement=r"[(DI2)_{yx}^2] = \sum_b \left(\sum_z (DOD1)_{bzy}(ID1)_{bzx} "
        r"+ (DO1)_{by}(I1)_{bx}\right)^2",
        closed_form=cf.linear_weight_gradient_squared_double_corrected,
        reference=ref.linear_weight_gradient_squared_double,
        checked_against="sum over b of squared per-sample jax.grad of the double-backprop loss",
        domain=_LINEAR_TANGENTS_SQUARED,
        corrects="vijay2019/sec2.2-linear-weight-gradient-squared",
    ),
    _claim(
        id="vijay2019/sec2.2-linear-input-gradient",
        location="§2.2, (DI1)",
        statement=r"[(DI1)_{bx}] = +[(DO1)_{by}][(I2)_{yx}]",
        closed_form=cf.linear_input_gradient_double,
        reference=ref.linear_input_gradient_double,
        checked_against="jax.grad with respect to I1 of sum(DO1 O1) + sum(DOD1 OD1)",
        domain=_LINEAR_TANGENTS,
    ),
    _claim(
        id="vijay2019/sec2.2-linear-bias-gradient",
        location="§2.2, (DI3)",
        statement=r"[(DI3)_y] = +[(DO1)_{by}]",
        closed_form=cf.linear_bias_gradient_double,
        reference=ref.linear_bias_gradient_double,
        checked_against="jax.grad with respect to I3 of sum(DO1 O1) + sum(DOD1 OD1)",
        domain=_LINEAR_TANGENTS,
        note=_SUM_NOTE,
        symmetries=(
            ("swapped arguments", "sum_b DO1 does not depend on I1 or I2, the arguments swapped"),
        ),
    ),
    _claim(
        id="vijay2019/sec2.2-linear-bias-gradient-squared",
        location="§2.2, (DI3)^2",
        statement=r"[(DI3)_y^2] = +[(DO1)_{by}^2]",
        closed_form=cf.linear_bias_gradient_squared_double,
        reference=ref.linear_bias_gradient_squared_double,
        checked_against="sum over b of squared per-sample jax.grad of the double-backprop loss",
        domain=_LINEAR_TANGENTS,
        note="Holds because OD1 does not depend on I3. " + _SUM_NOTE,
        symmetries=(
            ("swapped arguments", "sum_b DO1^2 does not depend on I1 or I2, the arguments swapped"),
        ),
    ),
    _claim(
        id="vijay2019/sec2-network-double-backprop",
        location="§2.1 and §2.2, composed: linear → softsign → linear",
        statement=r"DW_k, Dc_k, DI0, DID0 \text{ by } \S2.2 \to \S2.1 \to \S2.2",
        closed_form=cf.network_double_backprop,
        reference=ref.network_gradients_left,
        reference_right=ref.network_gradients_right,
        checked_against="jax.grad of sum(DO O) + sum(DOD OD), OD by jax.jvp of the whole network; "
        "at a hidden pre-activation of exactly 0, the left- and right-sided truths",
        domain=_NETWORK,
    ),
    _claim(
        id="vijay2019/sec2-network-squared-gradients",
        location="§2.2 (DI2)^2 corrected and (DI3)^2, composed through the network",
        statement=r"\sum_b (DW_k^{(b)})^2, \sum_b (Dc_k^{(b)})^2",
        closed_form=cf.network_squared_gradients,
        reference=ref.network_squared_gradients_left,
        reference_right=ref.network_squared_gradients_right,
        checked_against="sum over b of squared per-sample jax.grad through jax.jvp of the network",
        domain=_NETWORK,
        symmetries=(
            ("one branch negated", "every output is a square: a sign flipped on one side of softsign's kink is squared away"),
        ),
    ),
)
