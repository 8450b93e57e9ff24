"""Exact verdicts: a claim's closed form and its reference compared as SymPy expressions.

Next to the numerical verdict, never in place of it. For each size of a shaped claim (every
dimension 1 to 3 where the domain allows, :func:`sizes_to_prove`) both jaxprs are translated
to expressions (:mod:`derivcheck._symbolic`) on symbols that carry the domain's assumptions
(:func:`_symbolic_inputs`): real, positive, negative; a one-hot target is each of its
one-hot values in turn; a target on the simplex has its last element ``1 - sum(others)``.
Every sign a kink leaves open is a branch, and each branch is proved apart:

* **proved**: on every branch the difference ``closed form - reference`` of every output
  element vanishes: exponentials are replaced by independent generators
  (:math:`e^{a x + b y} = E_x^a E_y^b`, exact for rational :math:`a, b`), so that the
  difference is a rational function that ``sympy.cancel`` decides; ``sympy.simplify`` is
  the fallback. Proved for the sizes listed, off the ties (the kinks), for every input of
  the domain.
* **disproved**: on some branch an element's difference is not zero at an exact rational
  point of the domain on that branch; the difference is given simplified, and the point is
  run through both sides in float64 to confirm it numerically.
* **not attempted**: a primitive without an exact rule, a NumPy closed form, inputs from a
  user's strategy; **timed out**: the time limit ran out first; **inconclusive**: a
  difference that did not simplify to 0 and no point was found where it is not.

Each size's translation is itself checked: at a sampled point its exact values of both
sides agree with JAX's float64 values (:func:`_faithful`), so a wrong rule cannot prove.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import math
import random
import signal
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

import jax
import numpy as np
import sympy

from derivcheck import _symbolic
from derivcheck._checker import output_names
from derivcheck._config import checking
from derivcheck._host import HostClosedForm
from derivcheck.claims import Claim, Domain

__all__ = ["DEFAULT_TIMEOUT_S", "PROOF_VERDICTS", "Proof", "contradicts", "expected_proof", "prove_claim",
           "prove_claims", "prove_closed_form", "sizes_to_prove"]

#: Seconds a claim may take (all its sizes and branches) unless told otherwise.
DEFAULT_TIMEOUT_S = 30.0
#: The largest size a dimension is proved for (where the domain allows it).
LARGEST_SIZE = 3
#: Branches (sign choices at kinks) one size may have before it is given up.
MOST_BRANCHES = 512
#: Points tried, per branch, in search of one where a difference is not zero.
POINTS_TRIED = 256
#: Agreement asked of JAX's float64 value and the exact one at a point (relative): the
#: float64 evaluation of a claim rounds at ~1e-16 per operation.
NUMERIC_AGREEMENT = 1e-7

#: A float64 difference of both sides counts as seen above this many ulps of the larger
#: (each side's own float64 evaluation rounds by a few).
VISIBLE_ULPS = 256

PROOF_VERDICTS = ("proved", "disproved", "inconclusive", "not attempted", "timed out")


class _TimedOut(Exception):
    pass


@dataclasses.dataclass(frozen=True)
class Proof:
    """The exact verdict of one claim (or of its ``outside`` domain).

    Attributes:
      verdict: one of :data:`PROOF_VERDICTS`.
      why: for all but ``proved``, one line saying why.
      sizes: the dimension sizes proved (each a ``{symbol: size}``), or the one disproved.
      branches: how many branches (sign choices at kinks) were proved, over all sizes.
      difference: for ``disproved``: the branch condition and, per output element that
        differs, ``closed form - reference`` simplified (text and MathML).
      counterexample: for ``disproved``: an exact point (arguments as nested lists of
        rationals, as text) where the difference is not zero; ``numeric`` holds both sides
        and their difference evaluated there in float64.
      seconds: time taken.
      outside: for a conditional claim, the verdict outside its condition.
    """

    verdict: str
    why: str = ""
    sizes: tuple[dict[str, int], ...] = ()
    branches: int = 0
    difference: tuple[dict[str, str], ...] = ()
    condition: str = ""
    counterexample: dict[str, Any] | None = None
    numeric: dict[str, Any] | None = None
    seconds: float = 0.0
    outside: Proof | None = None

    def sizes_text(self) -> str:
        """``n = 1, 2, 3`` or ``(m, n) = (1, 1), (1, 2), ...``; "" for a claim without dims."""
        return sizes_text(self.sizes)

    def summary(self) -> str:
        """One line: the verdict and what it covers."""
        sizes = self.sizes_text()
        if self.verdict == "proved":
            text = "proved" + (f" for {sizes}" if sizes else " for every input")
            text += f" ({self.why})" if self.why else ""
        elif self.verdict == "disproved":
            text = "disproved" + (f" at {sizes}" if sizes else "")
        else:
            text = f"{self.verdict}: {self.why}"
        if self.outside is not None:
            text += f"; outside its condition: {self.outside.summary()}"
        return text

    def to_json(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["outside"] = self.outside.to_json() if self.outside is not None else None
        out["summary"] = self.summary()
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Proof:
        """The proof written by :meth:`to_json`."""
        fields = {f.name for f in dataclasses.fields(cls)}
        kept = {k: v for k, v in data.items() if k in fields}
        kept["sizes"] = tuple(kept.get("sizes", ()))
        kept["difference"] = tuple(kept.get("difference", ()))
        if kept.get("outside") is not None:
            kept["outside"] = cls.from_json(kept["outside"])
        return cls(**kept)


def sizes_text(sizes: Sequence[dict[str, int]]) -> str:
    if not sizes or not sizes[0]:
        return ""
    names = list(sizes[0])
    ranges = {n: sorted({s[n] for s in sizes}) for n in names}
    full = math.prod(len(r) for r in ranges.values()) == len(sizes) > 1 and len(names) > 1
    if full and all(r == list(range(r[0], r[-1] + 1)) for r in ranges.values()):
        return ", ".join(f"{n} = {r[0]}..{r[-1]}" for n, r in ranges.items()) + " (every combination)"
    if len(names) == 1:
        return f"{names[0]} = " + ", ".join(str(s[names[0]]) for s in sizes)
    return f"({', '.join(names)}) = " + ", ".join("(" + ", ".join(str(s[n]) for n in names) + ")" for s in sizes)


def expected_proof(claim: Claim) -> str:
    """The exact verdict a claim's kind expects: ``disproved`` for an erratum or a typo."""
    return "disproved" if claim.printed_wrong else "proved"


def contradicts(claim: Claim, proof: Proof) -> bool:
    """Whether a decided proof says the opposite of what the claim is declared to be: a
    claim expected to hold (or to hold under its condition) disproved, an erratum or a typo
    proved. A conditional claim proved outside its condition is not: its condition may be one
    of floating-point range (Sharma's tanh by its definition, true of the numbers, overflows
    in float32 beyond x = 44), which exact arithmetic does not have."""
    return proof.verdict in ("proved", "disproved") and proof.verdict != expected_proof(claim)


# --- Sizes and symbolic inputs --------------------------------------------------------------


def sizes_to_prove(domain: Domain) -> list[dict[str, int]]:
    """The sizes a shaped claim is proved for: each dimension from its smallest drawn size
    up to :data:`LARGEST_SIZE` (its smallest alone where that is larger); every combination
    where there are at most 27, else the same size for all (clamped), smallest first."""
    if not domain.dims:
        return [{}]
    choices = {}
    for name, drawn in domain.dims:
        low = min(drawn)
        choices[name] = list(range(low, LARGEST_SIZE + 1)) or [low]
    if math.prod(len(c) for c in choices.values()) <= 27:
        combos = [dict(zip(choices, sizes)) for sizes in itertools.product(*choices.values())]
    else:
        depth = max(len(c) for c in choices.values())
        combos = [{n: c[min(k, len(c) - 1)] for n, c in choices.items()} for k in range(depth)]
    return sorted(combos, key=lambda s: (sum(s.values()), tuple(s.values())))


_ASSUMPTIONS = {
    "real": dict(real=True), "logits": dict(real=True), "negative": dict(negative=True),
    "positive": dict(positive=True),
    # Off its tie at 0 (a kink, which the numerical check covers), a non-negative input is positive.
    "nonnegative": dict(positive=True),
    "direction": dict(real=True, nonzero=True), "probability": dict(positive=True),
    "unnormalized": dict(positive=True), "simplex": dict(positive=True), "smoothed": dict(positive=True),
}


@dataclasses.dataclass
class _Inputs:
    """One case of symbolic inputs: per argument an object array; how to draw a point."""

    arrays: list[np.ndarray]
    kinds: list[str]
    free: list[list[sympy.Symbol]]  # per argument, the symbols to draw
    bounds: list[float]  # per argument, the largest magnitude drawn
    widths: list[int]  # per argument, its drawn shape's last size (a simplex row's length)
    label: str = ""  # the one-hot values chosen, if any
    #: probabilities, kept below 1 when signs are decided (:class:`derivcheck._symbolic.Paths`)
    bounded: dict[sympy.Symbol, sympy.Expr] = dataclasses.field(default_factory=dict)
    #: how each symbol is shown in MathML (:func:`derivcheck._symbolic.symbols_for`)
    display: dict[sympy.Symbol, Any] = dataclasses.field(default_factory=dict)

    def draw(self, rng: random.Random, scales: Sequence[Any] | None = None) -> dict[sympy.Symbol, sympy.Rational]:
        """A random exact point of the domain (scales of magnitude: :data:`_SCALES`)."""
        point: dict[sympy.Symbol, sympy.Rational] = {}
        for kind, array, free, bound, width in zip(self.kinds, self.arrays, self.free, self.bounds, self.widths):
            if kind in ("simplex", "smoothed"):
                rows = array.reshape(-1, width)
                for row in rows:
                    weights = [rng.randint(1, 6) for _ in row]
                    total = sum(weights)
                    for v, w in zip(row, weights):
                        if isinstance(v, sympy.Symbol):
                            point[v] = sympy.Rational(w, total)
                continue
            # One scale per argument and point: small, unit and large values all come up
            # (a branch beyond a limit, |a| > 709, is reached only by large ones).
            scale = rng.choice(scales or _SCALES)
            values = [_draw_one(kind, rng, scale, bound) for _ in free]
            if values and kind in ("real", "logits") and rng.random() < 1 / 3:
                # Clustered: one value and small offsets (logits of 1,000 within a few of each other).
                values = [values[0] + sympy.Rational(rng.randint(-24, 24), 8) for _ in free]
            point.update(zip(free, values))
        return point


#: The scales of drawn values (each capped by the argument's bound).
_SCALES = (1, 1, 1, sympy.Rational(1, 8), 8, 64, 512)


def _draw_one(kind: str, rng: random.Random, scale, bound: float) -> sympy.Rational:
    if kind in ("probability",):
        return sympy.Rational(rng.randint(1, 15), 16)
    magnitude = sympy.Rational(rng.randint(1, 24), 8) * scale
    limit = sympy.Rational(bound)
    if magnitude > limit:
        magnitude = limit * sympy.Rational(rng.randint(1, 8), 8)
    if kind in ("positive", "unnormalized"):
        return magnitude
    if kind == "negative":
        return -magnitude
    if kind == "nonnegative":
        return magnitude
    return magnitude * rng.choice((1, -1))


def _symbolic_inputs(domain: Domain, dims: dict[str, int]) -> Iterator[_Inputs]:
    """Every case of symbolic inputs at ``dims``: one per choice of one-hot targets."""
    base, kinds, free, hot, bounded, display = [], [], [], [], {}, {}
    for arg in domain.args:
        shape = domain.shape_of(arg, dims)
        drawn = domain.drawn_shape_of(arg, dims)
        kinds.append(arg.kind)
        if arg.kind == "one_hot":
            base.append(None)
            free.append([])
            hot.append((len(base) - 1, shape, drawn))
            continue
        if arg.kind not in _ASSUMPTIONS:
            raise _symbolic.Untranslatable(f"no symbolic domain for inputs of kind {arg.kind!r}")
        # Indexed along the declared dimensions, not a fixed axis of size 1 (a column).
        named = [not (isinstance(d, int) and d == 1) for d in arg.shape] + ([False] if arg.column else [])
        array = _symbolic.symbols_for(arg.name, shape, named, display, **_ASSUMPTIONS[arg.kind])
        if arg.kind == "probability":
            bounded.update({p: 1 / (1 + sympy.Dummy("u", positive=True)) for p in array.flat})
        if arg.kind in ("simplex", "smoothed") and drawn:
            flat = array.reshape(-1)
            rows = flat.reshape(-1, drawn[-1])
            for row in rows:  # a point of the simplex: the last element is the rest
                row[-1] = 1 - sympy.Add(*row[:-1])
                # On the open simplex, for deciding signs: y_i = w_i / (1 + sum w), w > 0.
                weights = [sympy.Dummy("w", positive=True) for _ in row[:-1]]
                bounded.update({y: w / (1 + sympy.Add(*weights)) for y, w in zip(row[:-1], weights)})
            array = rows.reshape(shape)
            free.append([])
        else:
            free.append(list(array.flat))
        base.append(array)
    choices = []
    for k, shape, drawn in hot:
        rows = int(np.prod(drawn[:-1], dtype=int)) if drawn else 1
        width = drawn[-1] if drawn else 1
        choices.append([(k, shape, rows, width, combo) for combo in itertools.product(range(width), repeat=rows)])
    bounds = [a.bound for a in domain.args]
    widths = [(domain.drawn_shape_of(a, dims) or (1,))[-1] for a in domain.args]
    for picked in itertools.product(*choices):
        arrays = list(base)
        labels = []
        for k, shape, rows, width, combo in picked:
            values = np.full((rows, width), sympy.Integer(0), dtype=object)
            for r, c in enumerate(combo):
                values[r, c] = sympy.Integer(1)
            arrays[k] = values.reshape(shape)
            labels.append(f"{domain.args[k].name} = e_{','.join(str(c + 1) for c in combo)}")
        yield _Inputs(arrays, kinds, free, bounds, widths, "; ".join(labels), bounded, display)


# --- Walking both sides, branch by branch ---------------------------------------------------


class _Side:
    """One side (closed form or reference) traced at one size."""

    def __init__(self, fn, avals):
        self.fn = fn
        with checking():
            self.closed, shape = jax.make_jaxpr(fn, return_shape=True)(*avals)
        self.names = output_names(shape)

    def outputs(self, inputs: _Inputs, paths: _symbolic.Paths) -> list[np.ndarray]:
        return _symbolic.evaluate(self.closed.jaxpr, self.closed.consts, inputs.arrays, paths)


def _branches(cf: _Side, ref: _Side, inputs: _Inputs, check) -> Iterator[tuple[dict, list, list]]:
    """Every branch: its signs and both sides' outputs there."""
    stack: list[dict] = [{}]
    count = 0
    while stack:
        signs = stack.pop()
        paths = _symbolic.Paths(signs, check, inputs.bounded)
        try:
            outs = cf.outputs(inputs, paths), ref.outputs(inputs, paths)
        except _symbolic.Decide as need:
            stack.append({**signs, need.key: -1})
            stack.append({**signs, need.key: 1})
            continue
        count += 1
        if count > MOST_BRANCHES:
            raise _symbolic.Untranslatable(f"more than {MOST_BRANCHES} branches at one size")
        yield signs, outs[0], outs[1]


# --- Deciding a difference -----------------------------------------------------------------


def _exp_generators(expr: sympy.Expr) -> tuple[sympy.Expr, dict[sympy.Symbol, sympy.Expr]]:
    """``expr`` with every exponential written in independent generators: the exponent,
    its own exponentials replaced first and put over one denominator, is split into terms
    :math:`\\sum_k c_k t_k` with rational :math:`c_k`, and :math:`e^{\\sum c_k t_k} = \\prod E_{t_k}^{c_k}`
    with one positive generator :math:`E_t = e^t` per distinct term. Returns the expression
    and the generators' values."""
    gens: dict[Any, sympy.Dummy] = {}
    seen: dict[Any, Any] = {}

    def walk(e):
        if e in seen:
            return seen[e]
        if not e.args:
            out = e
        elif isinstance(e, sympy.exp):
            arg = sympy.expand(walk(e.args[0]))
            value = sympy.S.One
            for t, c in arg.as_coefficients_dict().items():
                c = sympy.sympify(c)
                if t == 1:
                    value *= sympy.exp(c)
                elif c.is_Rational:
                    key = sympy.cancel(t)
                    value *= gens.setdefault(key, sympy.Dummy("E", positive=True)) ** c
                else:
                    value *= sympy.exp(c * t)
            out = value
        else:
            out = e.func(*(walk(a) for a in e.args))
        seen[e] = out
        return out

    result = walk(sympy.sympify(expr))
    values = {g: sympy.exp(t) for t, g in gens.items()}
    # Generators inside generators' values are written back too.
    return result, {g: v.xreplace(values) for g, v in values.items()}


def _in_generators(expr: sympy.Expr) -> tuple[sympy.Expr, dict]:
    """``expr`` with tanh and the like in exponentials, those in generators (:func:`_exp_generators`)."""
    return _exp_generators(sympy.sympify(expr).rewrite(sympy.exp))


def _rational_form(expr: sympy.Expr) -> tuple[sympy.Expr, dict]:
    e, gens = _in_generators(expr)
    return sympy.cancel(sympy.together(e)), gens


#: Above this many operations, a difference that the rational form does not show to be 0 is
#: not handed to ``sympy.simplify`` (minutes, on a network's gradient).
SIMPLIFY_MOST_OPS = 400


def _vanishes(expr: sympy.Expr) -> bool:
    """Whether ``expr`` is identically 0 (True only when shown): the numerator of its
    rational form (:func:`_exp_generators`) expands to 0; else ``sympy.simplify`` says 0."""
    if expr == 0:
        return True
    e, _ = _in_generators(expr)
    numerator, _ = sympy.fraction(sympy.together(e))
    if sympy.expand(numerator) == 0:
        return True
    return sympy.count_ops(expr) <= SIMPLIFY_MOST_OPS and sympy.simplify(expr) == 0


#: Differences shown factored up to this many operations (factoring a larger one can take
#: minutes); larger ones are shown over one denominator.
FACTOR_MOST_OPS = 120


#: ... and up to this total degree of its numerator (an exponent 709/a makes a polynomial
#: of degree 709 in its generator).
FACTOR_MOST_DEGREE = 12


def _degree(form: sympy.Expr) -> int:
    try:
        return sympy.Poly(sympy.fraction(form)[0]).total_degree()
    except (sympy.PolynomialError, sympy.GeneratorsNeeded):
        return 0


def _simplified(expr: sympy.Expr) -> sympy.Expr:
    """A readable form of a non-zero difference."""
    form, gens = _rational_form(expr)
    if sympy.count_ops(form) <= FACTOR_MOST_OPS and _degree(form) <= FACTOR_MOST_DEGREE:
        form = sympy.factor(form)
    return sympy.powsimp(form.xreplace(gens))


def _value(expr: Any, point: dict) -> sympy.Expr:
    return sympy.sympify(expr).xreplace(point)


def _number(expr: Any, point: dict) -> complex | float | None:
    try:
        v = _value(expr, point).evalf(50)
    except (ZeroDivisionError, ValueError, TypeError):
        return None
    if v.has(sympy.zoo, sympy.nan, sympy.oo, -sympy.oo) or not v.is_number:
        return None
    return float(v) if v.is_real else complex(v)


def _on_branch(signs: dict, point: dict) -> bool:
    for key, sign in signs.items():
        v = _number(key, point)
        if v is None or isinstance(v, complex) or v == 0 or (v > 0) != (sign > 0):
            return False
    return True


def _condition_text(signs: dict) -> str:
    return ", ".join(f"{sympy.sstr(k)} {'>' if s > 0 else '<'} 0" for k, s in signs.items())


def _in_domain(values: Sequence[np.ndarray], domain: Domain) -> bool:
    for arg, x in zip(domain.args, values):
        if arg.kind in ("simplex", "smoothed") and x.size and np.any(x <= 0):
            return False
    return True


def _numbers(arrays: Sequence[np.ndarray], point: dict) -> list[np.ndarray]:
    return [np.array([float(_value(v, point)) for v in a.flat], dtype=np.float64).reshape(a.shape) for a in arrays]


def _rationals(arrays: Sequence[np.ndarray], point: dict) -> list[Any]:
    return [np.vectorize(lambda v: str(_value(v, point)), otypes=[object])(a).tolist() if a.ndim
            else str(_value(a.item(), point)) for a in arrays]


def _jax_outputs(fn, values: Sequence[np.ndarray]) -> list[np.ndarray]:
    with checking():
        return [np.asarray(leaf, np.float64) for leaf in jax.tree_util.tree_leaves(fn(*values))]


def _agrees(exact: float, numeric: float) -> bool:
    return abs(exact - numeric) <= NUMERIC_AGREEMENT * max(1.0, abs(exact))


# --- One size ------------------------------------------------------------------------------


@dataclasses.dataclass
class _SizeOutcome:
    verdict: str  # proved, disproved, inconclusive
    branches: int = 0
    why: str = ""
    difference: tuple[dict[str, str], ...] = ()
    condition: str = ""
    counterexample: dict[str, Any] | None = None
    numeric: dict[str, Any] | None = None


def _prove_size(closed_form, reference, domain: Domain, dims: dict[str, int], check, rng) -> _SizeOutcome:
    avals = tuple(jax.ShapeDtypeStruct(domain.shape_of(a, dims), np.float64) for a in domain.args)
    cf, ref = _Side(closed_form, avals), _Side(reference, avals)
    proved = 0
    faithful_done = False
    for inputs in _symbolic_inputs(domain, dims):
        branches = list(_branches(cf, ref, inputs, check))
        points = _points_on(branches, inputs, domain, rng, check)
        if not faithful_done:
            # At unit scale, where float64 computes both sides to ~1e-15 (not at logits of
            # 1,000, where an erratum about overflow is right to differ from the truth).
            _faithful(cf, ref, inputs, branches, _points_on(branches, inputs, domain, rng, check, (1,)))
            faithful_done = True
        for (signs, cf_out, ref_out), point in zip(branches, points):
            differing = []
            for name, c, r in zip(cf.names, cf_out, ref_out):
                for index in np.ndindex(c.shape):
                    check()
                    d = _symbolic._to_expr(c[index]) - _symbolic._to_expr(r[index])
                    # Not zero at a point of the branch: no need to simplify it.
                    if _nonzero_at(d, point) or not _vanishes(d):
                        differing.append((name, index, d))
            if not differing:
                proved += 1
                continue
            return _disproof(cf, ref, inputs, signs, differing, domain, check, rng, proved, point)
    return _SizeOutcome("proved", branches=proved)


def _nonzero_at(d, point) -> bool:
    if point is None or d == 0:
        return False
    v = _number(d, point)
    return v is not None and not isinstance(v, complex) and abs(v) > _ZERO


#: A difference smaller than this at 50 significant digits is taken for 0 at a point (the
#: differences of wrong formulas at the points drawn are of order 1e-3 and more).
_ZERO = 1e-25


def _points_on(branches, inputs: _Inputs, domain: Domain, rng, check, scales=None) -> list[dict | None]:
    """A drawn point of the domain on each branch, None where no draw fell on it."""
    points: list[dict | None] = [None] * len(branches)
    for _ in range(POINTS_TRIED):
        if all(p is not None for p in points):
            break
        check()
        point = inputs.draw(rng, scales)
        if not _in_domain(_numbers(inputs.arrays, point), domain):
            continue
        for k, (signs, _, _) in enumerate(branches):
            if points[k] is None and _on_branch(signs, point):
                points[k] = point
                break
    return points


def _faithful(cf: _Side, ref: _Side, inputs: _Inputs, branches, points) -> None:
    """Both sides' exact values at a drawn point agree with JAX's float64 values there: the
    translation computes what the functions compute. Raises Untranslatable if not."""
    for (_, cf_out, ref_out), point in zip(branches, points):
        if point is None:
            continue
        values = _numbers(inputs.arrays, point)
        for side, outs in ((cf, cf_out), (ref, ref_out)):
            numeric = _jax_outputs(side.fn, values)
            for exact_leaf, leaf in zip(outs, numeric):
                for index in np.ndindex(exact_leaf.shape):
                    e = _number(_symbolic._to_expr(exact_leaf[index]), point)
                    if e is None or isinstance(e, complex) or not np.isfinite(leaf[index]):
                        continue
                    if not _agrees(e, float(leaf[index])):
                        raise _symbolic.Untranslatable(
                            f"the translation differs from JAX at a drawn point ({e!r} vs {float(leaf[index])!r})")
        return
    # No drawn point fell on any branch: nothing to compare (a domain the draws miss).


def _disproof(cf, ref, inputs, signs, differing, domain, check, rng, proved, first) -> _SizeOutcome:
    condition = "; ".join(t for t in (inputs.label, _condition_text(signs)) if t)

    def disproved(point, numeric) -> _SizeOutcome:
        return _SizeOutcome("disproved", branches=proved, difference=_shown(differing, inputs.display),
                            condition=condition, counterexample=_exact_point(domain, inputs, point), numeric=numeric)

    unconfirmed: list[str] = []
    fallback = None
    for attempt in range(POINTS_TRIED):
        if len(unconfirmed) >= _UNCONFIRMED_MOST:
            break
        check()
        point = first if attempt == 0 and first is not None else inputs.draw(rng)
        values = _numbers(inputs.arrays, point)
        if not _in_domain(values, domain) or not _on_branch(signs, point):
            continue
        for name, index, d in differing:
            v = _number(d, point)
            if v is None or isinstance(v, complex) or abs(v) <= _ZERO:
                continue
            numeric = _confirm(cf, ref, values, name, index, v)
            if numeric is not None and numeric["float64_exact"]:
                return disproved(point, numeric)
            # Too small for float64 to see, or float64 off on its own there: look on for a
            # point where float64 shows the exact difference, keeping this one if none.
            unconfirmed.append(f"{v:.3g} at {name}{list(index)}")
            if numeric is not None and fallback is None:
                fallback = (point, numeric)
            if len(unconfirmed) >= _UNCONFIRMED_MOST:
                break
    if fallback is not None:
        return disproved(*fallback)
    if unconfirmed:
        raise _symbolic.Untranslatable(f"symbolic differences ({unconfirmed[0]}) were not confirmed numerically")
    return _SizeOutcome("inconclusive", branches=proved, condition=condition,
                        why=f"on the branch {condition or '(none)'}, {differing[0][0]}{list(differing[0][1])}: the "
                            "difference did not simplify to 0, and no point was found where it is not")


def _shown(differing, display) -> tuple[dict[str, str], ...]:
    """The first differing elements, simplified, as text and MathML."""
    shown = []
    for n, i, diff in differing[:8]:
        text = _simplified(diff)
        shown.append({"output": n, "index": str(list(i)), "difference": sympy.sstr(text),
                      "mathml": sympy.mathml(text.xreplace(display), printer="presentation")})
    return tuple(shown)


def _exact_point(domain, inputs, point) -> dict[str, Any]:
    return {a.name: value for a, value in zip(domain.args, _rationals(inputs.arrays, point))}


#: Points with a difference float64 cannot see that are tried before giving up.
_UNCONFIRMED_MOST = 4


def _confirm(cf, ref, values, name, index, exact) -> dict[str, Any] | None:
    """Both sides in float64 at the point: None unless they differ there too. Where float64
    lands elsewhere than the exact difference (an overflow, a flushed subnormal: errata about
    float64 itself), ``float64_exact`` is False."""
    k = cf.names.index(name)
    c = float(_jax_outputs(cf.fn, values)[k][index])
    r = float(_jax_outputs(ref.fn, values)[k][index])
    rounding = VISIBLE_ULPS * float(np.finfo(np.float64).eps) * max(abs(c), abs(r))
    if not (np.isfinite(c) and np.isfinite(r)) or abs(c - r) <= rounding:
        return None
    same = abs((c - r) - exact) <= NUMERIC_AGREEMENT * abs(exact) + rounding
    return {"output": name, "index": list(index), "closed_form": c, "reference": r, "difference": c - r,
            "exact_difference": exact, "float64_exact": bool(same)}


# --- Time limit ----------------------------------------------------------------------------


@contextlib.contextmanager
def _time_limit(seconds: float) -> Iterator[Any]:
    """A deadline checked between steps, and, in the main thread, an alarm that interrupts
    a long SymPy call."""
    deadline = time.monotonic() + seconds

    def check():
        if time.monotonic() > deadline:
            raise _TimedOut

    main = threading.current_thread() is threading.main_thread() and hasattr(signal, "setitimer")
    if main:
        def on_alarm(signum, frame):
            raise _TimedOut

        previous = signal.signal(signal.SIGALRM, on_alarm)
        signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield check
    finally:
        if main:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)


# --- Claims --------------------------------------------------------------------------------


def prove_closed_form(closed_form, reference, domain: Domain, *, timeout_s: float = DEFAULT_TIMEOUT_S,
                      seed: int = 0) -> Proof:
    """The exact verdict of ``closed_form`` against ``reference`` on ``domain``."""
    start = time.monotonic()
    if isinstance(closed_form, HostClosedForm):
        return Proof("not attempted", why="a NumPy closed form runs on the host: it has no jaxpr to translate")
    if domain.strategy is not None:
        return Proof("not attempted", why="inputs drawn by a user's strategy have no symbolic domain")
    rng = random.Random(seed)
    proved_sizes: list[dict[str, int]] = []
    branches = 0
    try:
        with _time_limit(timeout_s) as check:
            for dims in sizes_to_prove(domain):
                outcome = _prove_size(closed_form, reference, domain, dims, check, rng)
                branches += outcome.branches
                if outcome.verdict == "proved":
                    proved_sizes.append(dims)
                    continue
                if outcome.verdict == "disproved":
                    return Proof("disproved", sizes=(dims,), branches=branches, difference=outcome.difference,
                                 condition=outcome.condition, counterexample=outcome.counterexample,
                                 numeric=outcome.numeric, seconds=time.monotonic() - start)
                return Proof("inconclusive", why=outcome.why, sizes=(dims,), branches=branches,
                             seconds=time.monotonic() - start)
    except _TimedOut:
        if proved_sizes:
            return Proof("proved", why=f"larger sizes timed out after {timeout_s:g} s", sizes=tuple(proved_sizes),
                         branches=branches, seconds=time.monotonic() - start)
        return Proof("timed out", why=f"no size was decided within {timeout_s:g} s", branches=branches,
                     seconds=time.monotonic() - start)
    except _symbolic.Untranslatable as exc:
        return Proof("not attempted", why=str(exc), seconds=time.monotonic() - start)
    except RecursionError:
        return Proof("not attempted", why="the expressions nest too deeply for SymPy",
                     seconds=time.monotonic() - start)
    return Proof("proved", sizes=tuple(proved_sizes), branches=branches, seconds=time.monotonic() - start)


def prove_claim(claim: Claim, *, timeout_s: float = DEFAULT_TIMEOUT_S, seed: int = 0) -> Proof:
    """The exact verdict of one claim; a conditional claim's also outside its condition
    (each with its own time limit)."""
    proof = prove_closed_form(claim.closed_form, claim.reference, claim.domain, timeout_s=timeout_s, seed=seed)
    if claim.outside is not None:
        outside = prove_closed_form(claim.closed_form, claim.reference, claim.outside, timeout_s=timeout_s, seed=seed)
        proof = dataclasses.replace(proof, outside=outside)
    return proof


# --- Many claims ---------------------------------------------------------------------------


def _worker_start(sources: tuple[str, ...]) -> None:
    from derivcheck._config import for_this_process
    from derivcheck.catalog import use

    for_this_process()
    use(list(sources) or None)


def _prove_by_id(claim_id: str, timeout_s: float, seed: int) -> dict[str, Any]:
    from derivcheck.catalog import catalog

    claim = next(c for c in catalog() if c.id == claim_id)
    return prove_claim(claim, timeout_s=timeout_s, seed=seed).to_json()


def prove_claims(claims: Sequence[Claim], *, timeout_s: float = DEFAULT_TIMEOUT_S, jobs: int = 1, seed: int = 0,
                 on_done=None) -> dict[str, Proof]:
    """Every claim's proof, by id, in ``jobs`` worker processes (1: this one); ``on_done(claim,
    proof)`` after each. Workers load the catalogs in use (:func:`derivcheck.catalog.active_sources`)."""
    proofs: dict[str, Proof] = {}

    def finished(claim, proof):
        proofs[claim.id] = proof
        if on_done is not None:
            on_done(claim, proof)

    if jobs <= 1 or len(claims) <= 1:
        for claim in claims:
            finished(claim, prove_claim(claim, timeout_s=timeout_s, seed=seed))
        return {c.id: proofs[c.id] for c in claims}
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    from derivcheck.catalog import active_sources

    with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn"),
                             initializer=_worker_start, initargs=(active_sources(),)) as pool:
        futures = {pool.submit(_prove_by_id, c.id, timeout_s, seed): c for c in claims}
        for future in as_completed(futures):
            finished(futures[future], Proof.from_json(future.result()))
    return {c.id: proofs[c.id] for c in claims}
