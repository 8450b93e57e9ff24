"""The claim record: one checkable statement of one document, as printed."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, Literal, get_args

__all__ = ["EXPECTED_KINDS", "PRINTED_WRONG", "Arg", "Claim", "Descent", "Document", "Domain", "Expected"]

Expected = Literal["holds", "erratum", "typo", "conditional"]

#: The kinds a claim may be expected to be, and the two of them that are printed wrong.
EXPECTED_KINDS: tuple[str, ...] = get_args(Expected)
PRINTED_WRONG: frozenset[str] = frozenset({"erratum", "typo"})


@dataclasses.dataclass(frozen=True)
class Document:
    """A derivation document: what it transcribes, and its title and author as printed.

    Attributes:
      key: short name, the prefix of its claim ids and the name of its report page.
      seed: the file (or identifier, ``arXiv:1502.03167``) the claims are transcribed from.
      title: as printed.
      author: as printed.
      citation: where it was published, for reports (optional).
      url: where a reader finds it (optional); reports link the source to it.
    """

    key: str
    seed: str
    title: str
    author: str
    citation: str = ""
    url: str = ""

    def __str__(self) -> str:
        return f"{self.author}, \"{self.title}\" ({self.seed})"


@dataclasses.dataclass(frozen=True)
class Arg:
    """One input of a claim.

    Attributes:
      name: the argument name the closed form and the reference take.
      shape: dimensions, each a symbol of the domain (``"n"``) or a fixed size.
      kind: what values are drawn (see :mod:`derivcheck.inputs`): ``real``, ``negative``,
        ``positive``, ``nonnegative``, ``logits``, ``probability``, ``one_hot``, ``simplex``,
        ``smoothed``, ``unnormalized``.
      bound: the largest magnitude drawn.
      kinks: values at which the claim's function is not differentiable in this argument,
        elementwise; they are always among the inputs (DESIGN.md principle 5).
      column: drawn over ``shape`` (targets normalised along its last dimension) and passed
        with a trailing axis of size 1, for documents whose vectors are columns.
      float16_bound: the largest magnitude drawn in float16, where it must be smaller than
        ``bound``: the closed form as written leaves float16's range (largest 65504, normal
        from 6.1e-5) beyond it, where float32 does not (a softmax output of logits 20 apart
        is 2e-9, and y / a overflows).
      float16_range: with ``float16_bound``, why: which value would leave float16's range.
    """

    name: str
    shape: tuple[str | int, ...] = ()
    kind: str = "real"
    bound: float = 100.0
    kinks: tuple[float, ...] = ()
    column: bool = False
    float16_bound: float | None = None
    float16_range: str = ""

    def __post_init__(self) -> None:
        if self.float16_bound is not None and not 0 < self.float16_bound <= self.bound:
            raise ValueError(f"argument {self.name!r}: float16_bound must lie in (0, bound], "
                             f"got {self.float16_bound!r}")
        if (self.float16_bound is not None) != bool(self.float16_range):
            raise ValueError(f"argument {self.name!r}: a float16_bound needs float16_range, the reason, and only it")

    def bound_in(self, dtype: Any) -> float:
        """The largest magnitude drawn in ``dtype``."""
        if self.float16_bound is not None and str(dtype) == "float16":
            return self.float16_bound
        return self.bound


@dataclasses.dataclass(frozen=True)
class Domain:
    """The inputs a claim is checked on: its arguments and the sizes their dims take.

    ``dims`` maps each dimension symbol to the sizes tried, one shape bucket per position:
    bucket ``k`` uses the ``k``-th size of every symbol, so each bucket compiles once. A
    ``strategy`` replaces the declared kinds as the source of the inputs.
    """

    args: tuple[Arg, ...]
    dims: tuple[tuple[str, tuple[int, ...]], ...] = ()
    #: Instead of drawing ``args`` by kind: a Hypothesis strategy that draws every argument
    #: at once, a dict by name or a tuple in order (``derivcheck.check(inputs=strategy)``).
    #: ``args`` then only name them, with their kinks; the search checks one point per example.
    strategy: Any = None
    #: With a strategy: the shapes of the direction arguments that follow ``args``, from the
    #: drawn ones (``{name: ShapeDtypeStruct}`` to ``{name: ShapeDtypeStruct}``).
    directions: Callable[[dict[str, Any]], dict[str, Any]] | None = None

    def float16_ranges(self) -> tuple[str, ...]:
        """One line per reason why arguments are drawn smaller in float16
        (``Arg.float16_bound``): ``"|s| <= 3.5: logits within 7 ..."``; empty if none."""
        reasons: dict[str, list[str]] = {}
        for a in self.args:
            if a.float16_bound is not None:
                reasons.setdefault(a.float16_range, []).append(f"|{a.name}| <= {a.float16_bound:g}")
        return tuple(f"{', '.join(bounds)}: {why}" for why, bounds in reasons.items())

    @property
    def buckets(self) -> tuple[dict[str, int], ...]:
        if not self.dims:
            return ({},)
        count = len(self.dims[0][1])
        if any(len(sizes) != count for _, sizes in self.dims):
            raise ValueError("every dimension needs one size per shape bucket")
        return tuple({name: sizes[k] for name, sizes in self.dims} for k in range(count))

    def drawn_shape_of(self, arg: Arg, dims: dict[str, int]) -> tuple[int, ...]:
        """The shape values are drawn in (without a column's trailing axis)."""
        return tuple(dims[d] if isinstance(d, str) else d for d in arg.shape)

    def shape_of(self, arg: Arg, dims: dict[str, int]) -> tuple[int, ...]:
        """The shape the closed form and the reference receive."""
        return self.drawn_shape_of(arg, dims) + ((1,) if arg.column else ())

    def with_kind(self, name: str, kind: str) -> Domain:
        """This domain with argument ``name`` drawn from another kind."""
        args = tuple(dataclasses.replace(a, kind=kind) if a.name == name else a for a in self.args)
        return dataclasses.replace(self, args=args)


@dataclasses.dataclass(frozen=True)
class Descent:
    """What an update rule is for: a small enough step lowers its loss.

    Attributes:
      loss: the loss (a reference function), taking the claim's arguments; the update's
        outputs, a dict, replace the arguments of the same names.
      step: the name of the step-size argument.
    """

    loss: Callable[..., Any]
    step: str


@dataclasses.dataclass(frozen=True)
class Claim:
    """One checkable closed form of one document.

    Attributes:
      id: stable, readable identifier, ``<document key>/<location>-<what>``.
      document: the document it comes from.
      location: where it is printed (equation number or section), as printed.
      statement: the formula in LaTeX, as printed.
      closed_form: the hand-written formula (``derivations/``), taking the domain's args.
      reference: the autodiff truth (``reference/``), same arguments, same output pytree.
      domain: the inputs checked.
      expected: ``holds``; ``erratum`` (the printed formula is wrong in its reasoning, or its
        repair appears nowhere in the document); ``typo`` (it fails as printed while an obvious
        one-symbol repair holds, a repair the document itself uses elsewhere: DESIGN.md
        principle 3); or ``conditional`` (it holds only under ``preconditions``). An erratum
        and a typo are both checked as printed, must fail, and carry a verified correction.
      reason: one line, required unless ``expected == "holds"``.
      preconditions: assumptions printed or implied by the document.
      outside: for a conditional claim, inputs that break its condition; it must fail there.
      reference_right: where the computation passes through a kink that is not at an
        argument (a hidden unit's pre-activation exactly 0), the right-sided truth;
        ``reference`` is then the left-sided one, and the closed form must lie between.
      corrects: for a corrected formula, the id of the erratum or typo it replaces.
      note: transcription notes (layout choices, slips that change nothing checkable).
      checked_against: one line naming the reference, for reports.
      symmetries: ``(operator, why)`` pairs: a planted fault of the self-test
        (:mod:`derivcheck.mutants`) that cannot change this claim's values, and the symmetry
        of the claim as stated that makes it so. An equivalent mutant without one fails the
        self-test: a symmetry of the inputs chosen, not of the claim, is widened away instead.
      descent: for an update rule, the loss a small step of it lowers (a property the
        tests check beyond the agreement with autodiff).
      sided: kinks found automatically: per argument, None (never moved) or
        ``(multiplier, along)``, how it moves to either side of a point where the reference
        passes through a tie (``derivcheck._checker._moved_inputs``). None: declared kinks
        only (the bundled documents declare theirs).
    """

    id: str
    document: Document
    location: str
    statement: str
    closed_form: Callable[..., Any]
    reference: Callable[..., Any]
    domain: Domain
    checked_against: str
    expected: Expected = "holds"
    reason: str = ""
    preconditions: tuple[str, ...] = ()
    outside: Domain | None = None
    reference_right: Callable[..., Any] | None = None
    corrects: str | None = None
    note: str = ""
    sided: tuple[tuple[float, int | None] | None, ...] | None = None
    descent: Descent | None = None
    symmetries: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if self.expected not in EXPECTED_KINDS:
            raise ValueError(f"{self.id}: expected must be one of {', '.join(EXPECTED_KINDS)}")
        if self.expected != "holds" and not self.reason:
            raise ValueError(f"{self.id}: a claim expected to be {self.expected} needs a reason")
        if (self.expected == "conditional") != (self.outside is not None):
            raise ValueError(f"{self.id}: a conditional claim, and only one, needs `outside`")

    @property
    def printed_wrong(self) -> bool:
        """An erratum or a typo: checked as printed, expected to fail."""
        return self.expected in PRINTED_WRONG
