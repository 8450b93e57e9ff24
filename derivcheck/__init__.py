"""derivcheck: verification of hand-derived gradients against JAX autodiff.

Importing derivcheck switches on float64 (``jax_enable_x64``), which the reference needs,
and full float32 matmul precision (``highest``): GPUs would otherwise use TF32 and TPUs
bfloat16 passes for float32 matrix products, which the float32 tolerance model does not
assume. Both settings are recorded with every result.
"""

import jax

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_default_matmul_precision", "highest")

from derivcheck._api import DERIVATIVES, check, check_custom_jvp, check_custom_vjp  # noqa: E402
from derivcheck._verify import verify  # noqa: E402
from derivcheck.catalog import DOCUMENTS, catalog, select  # noqa: E402
from derivcheck.claims import Arg, Claim, Document, Domain  # noqa: E402
from derivcheck.declare import (  # noqa: E402
    Input,
    logits,
    negative,
    nonnegative,
    one_hot,
    positive,
    probability,
    real,
    simplex,
)
from derivcheck.errors import ClaimError, InvalidArgument  # noqa: E402
from derivcheck.results import Result, Verdict  # noqa: E402

__all__ = [
    "DERIVATIVES",
    "DOCUMENTS",
    "Arg",
    "Claim",
    "ClaimError",
    "Document",
    "Domain",
    "Input",
    "InvalidArgument",
    "Result",
    "Verdict",
    "catalog",
    "check",
    "check_custom_jvp",
    "check_custom_vjp",
    "logits",
    "negative",
    "nonnegative",
    "one_hot",
    "positive",
    "probability",
    "real",
    "select",
    "simplex",
    "verify",
]
__version__ = "0.1.0"
