"""``derivcheck selftest``: plant faults in every claim's closed form and count the kills.

Every mutation operator of :mod:`derivcheck.mutants` is applied to the closed form of every
claim that is not printed wrong, an erratum or a typo (a fault planted in a formula already
known to be wrong cannot be told apart from its error; the corrections are mutated like every
claim that holds).
The mutated claim is checked in each dtype on the fixed batches of 128 points (one per input
regime) of one shape bucket: the middle sizes, or every dimension 3 for operators that need square matrices or
equal shapes. A mutant is

* ``killed`` when the check fails it,
* ``equivalent`` when it computes the same values as the original on a float64 batch (a
  dropped transpose of a symmetric matrix, swapped arguments of a symmetric formula) and
  the claim declares that symmetry (``Claim.symmetries``): it is listed with its reason, not
  counted, and must pass like the claim itself; ``UNJUSTIFIED EQUIVALENT`` when the claim
  declares none (the inputs, not the claim, may be what is symmetric),
* ``SURVIVED`` otherwise: a fault the gate would have missed.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Iterable, Sequence

import jax
import numpy as np

from derivcheck._composed import Composed, Unchanged
from derivcheck._config import scoped
from derivcheck._host import HostClosedForm
from derivcheck._verify import first_bucket_avals, runnable, verify
from derivcheck.claims import Claim, Domain
from derivcheck.inputs import BatchPlan, draw_batch
from derivcheck.mutants import MUTANTS, host_mutants_of

__all__ = ["MutantRecord", "kill_rates", "kill_totals", "mutants_of", "selftest_claim"]

# Operators that only apply where matrices are square or arguments share a shape.
_SQUARE = frozenset({"dropped transpose", "extra transpose", "wrong reduction axis", "swapped arguments"})
_SAME_VALUES = dict(rtol=1e-12, atol=1e-300)


@dataclasses.dataclass(frozen=True)
class MutantRecord:
    """One mutant of one claim in one dtype."""

    claim: str
    operator: str
    dtype: str
    status: str  # killed | equivalent | SURVIVED | EQUIVALENT BUT FAILED | UNJUSTIFIED EQUIVALENT
    detail: str

    @property
    def ok(self) -> bool:
        return self.status in ("killed", "equivalent")


def mutation_domain(domain: Domain, operator: str) -> Domain:
    """One shape bucket: every dimension 3 for the square operators, else the middle sizes
    (never the degenerate size 1 alone, where a perturbed output can coincide)."""
    if operator in _SQUARE:
        return dataclasses.replace(domain, dims=tuple((name, (3,)) for name, _ in domain.dims))
    middle = tuple((name, (sorted(sizes)[len(sizes) // 2],)) for name, sizes in domain.dims)
    return dataclasses.replace(domain, dims=middle)


def _host_mutants(claim: Claim, operators: Iterable[str]) -> list[tuple[str, Claim]]:
    """A NumPy closed form's faults, planted in NumPy (:func:`derivcheck.mutants.host_mutants_of`;
    the element moved by 2^13 float32 ulps, a fault in either dtype)."""
    domain = mutation_domain(claim.domain, "sign flip")
    wanted = set(operators)
    return [(name, dataclasses.replace(claim, closed_form=mutant, domain=domain))
            for name, mutant in host_mutants_of(claim.closed_form, first_bucket_avals(domain), "float32").items()
            if name.removeprefix("host: ") in wanted]


def mutants_of(claim: Claim, operators: Iterable[str] = MUTANTS) -> list[tuple[str, Claim]]:
    """The applicable mutants of ``claim``: (operator, mutated claim) pairs. A NumPy closed
    form gets the same faults written in NumPy, named ``host: <operator>``."""
    claim = runnable(claim)
    if isinstance(claim.closed_form, HostClosedForm):
        return _host_mutants(claim, operators)
    out = []
    for name in operators:
        domain = mutation_domain(claim.domain, name)
        mutant = MUTANTS[name](claim.closed_form, first_bucket_avals(domain))
        if mutant is not None:
            out.append((name, dataclasses.replace(claim, closed_form=mutant, domain=domain)))
    return out


@functools.lru_cache(maxsize=64)
def _values(fn: Callable):
    """``fn`` over a batch, compiled once: a claim's closed form serves all its mutants, and
    a change of outputs (:mod:`derivcheck._composed`) every closed form it is applied to."""
    return jax.jit(jax.vmap(fn))


def _batch_values(fn: Callable, arrays) -> list[np.ndarray]:
    if isinstance(fn, Composed):
        out = _values(fn.base)(*fn.arguments(tuple(arrays)))
        out = out if isinstance(fn.change, Unchanged) else _values(fn.change)(out)
    else:
        out = _values(fn)(*arrays)
    return [np.asarray(leaf) for leaf in jax.tree_util.tree_leaves(out)]


def is_equivalent(original: Claim, mutated: Claim) -> bool:
    """Whether the mutant computes the original's values (float64, 128 points) on its domain."""
    arrays = draw_batch(mutated.domain, BatchPlan(0, "unit", seed=0), points=128, dtype=np.float64)
    if isinstance(mutated.closed_form, HostClosedForm):  # NumPy: compared on the host
        original = runnable(original)
        pairs = zip(*(jax.tree_util.tree_leaves(c.closed_form.batch(arrays)) for c in (original, mutated)))
    else:
        pairs = zip(_batch_values(original.closed_form, arrays), _batch_values(mutated.closed_form, arrays))
    return all(bool(np.all(np.isclose(a, b, **_SAME_VALUES))) for a, b in pairs)


@scoped
def selftest_claim(claim: Claim, dtypes: Sequence[str], *, operators: Iterable[str] = MUTANTS,
                   device=None) -> list[MutantRecord]:
    """Every applicable mutant of ``claim`` checked in every dtype."""
    records = []
    symmetries = dict(claim.symmetries)
    for name, mutated in mutants_of(claim, operators):
        equivalent = is_equivalent(claim, mutated)
        why = symmetries.get(name.removeprefix("host: "))
        for dtype in dtypes:
            result = verify(mutated, dtype=dtype, examples=0, shrink=False, device=device)
            detail = result.detail
            if equivalent and not result.passed:
                status = "EQUIVALENT BUT FAILED"
            elif equivalent and why is None:
                status, detail = "UNJUSTIFIED EQUIVALENT", (
                    f"{detail}; the claim declares no symmetry that explains it (Claim.symmetries)")
            elif equivalent:
                status, detail = "equivalent", why
            else:
                status = "SURVIVED" if result.passed else "killed"
            records.append(MutantRecord(claim.id, name, dtype, status, detail))
    return records


def kill_rates(records: Sequence[MutantRecord], key: Callable[[MutantRecord], str]) -> list[tuple[str, int, int, int]]:
    """(group, killed, counted, equivalent) per group; equivalents are not counted."""
    groups: dict[str, list[MutantRecord]] = {}
    for r in records:
        groups.setdefault(key(r), []).append(r)
    return [(g, sum(r.status == "killed" for r in rs), sum(r.status != "equivalent" for r in rs),
             sum(r.status == "equivalent" for r in rs)) for g, rs in groups.items()]


def kill_totals(records: Sequence[MutantRecord]) -> tuple[int, int, int]:
    """(killed, counted, equivalent) over all ``records``."""
    ((_, *totals),) = kill_rates(records, lambda r: "all") or (("all", 0, 0, 0),)
    return tuple(totals)
