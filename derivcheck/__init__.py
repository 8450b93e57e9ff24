"""derivcheck: verification of hand-derived gradients against JAX autodiff.

Importing derivcheck changes no JAX setting. Each check runs with float64 enabled, which
the reference needs, and full float32 matmul precision (``highest``; GPUs would otherwise
use TF32 and TPUs bfloat16 passes for float32 matrix products, which the float32 tolerance
model does not assume), scoped to the check itself (:mod:`derivcheck._config`). Both
settings are recorded with every result.
"""

from derivcheck._api import DERIVATIVES, autodiff, check, check_custom_jvp, check_custom_vjp
from derivcheck._verify import verify
from derivcheck.catalog import DOCUMENTS, catalog, select
from derivcheck.claims import Arg, Claim, Descent, Document, Domain
from derivcheck.declare import (
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
from derivcheck.errors import ClaimError, InvalidArgument, VacuousCheckWarning
from derivcheck.results import Result, Verdict

__all__ = [
    "DERIVATIVES",
    "DOCUMENTS",
    "Arg",
    "Claim",
    "ClaimError",
    "Descent",
    "Document",
    "Domain",
    "Input",
    "InvalidArgument",
    "Result",
    "VacuousCheckWarning",
    "Verdict",
    "autodiff",
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
