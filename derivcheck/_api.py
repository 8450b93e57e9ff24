"""Checking a user's own derivatives: ``check``, ``check_custom_vjp``, ``check_custom_jvp``.

A user's check becomes a claim like the catalog's (DESIGN.md principle 2): the closed form
is the user's function, the reference is JAX autodiff of a forward function (or the user's
explicit reference), and the inputs are declarations (:mod:`derivcheck.declare`) drawn in
bulk, or a Hypothesis strategy drawn point by point. The engine, the tolerance model and
the result record are the ones ``derivcheck verify`` uses.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import jax
import jax.numpy as jnp
from hypothesis import strategies as st

from derivcheck._bounds import nested_jaxpr
from derivcheck._config import scoped
from derivcheck._host import TRACER_ERRORS, HostClosedForm, usable_closed_form
from derivcheck._verify import DIRECTION_BOUND, check_arguments, verify
from derivcheck.claims import Arg, Claim, Document, Domain
from derivcheck.declare import Input
from derivcheck.errors import ClaimError, InvalidArgument, VacuousCheckWarning
from derivcheck.results import Result

__all__ = ["DERIVATIVES", "Derivative", "autodiff", "check", "check_custom_jvp", "check_custom_vjp"]

Derivative = Literal["derivative", "second_derivative", "gradient", "jacobian", "jvp", "vjp", "hvp"]

#: The derivatives ``check`` can take of a forward function ``f``, and what the closed form
#: then computes (its arguments are ``f``'s, plus the extra one named).
DERIVATIVES: dict[str, str] = {
    "derivative": "f'(x) elementwise, for f a scalar function applied to every element of x",
    "second_derivative": "f''(x) elementwise, for f a scalar function applied to every element of x",
    "gradient": "the gradient of a scalar-valued f, shaped like x (a tuple for several wrt)",
    "jacobian": "the full Jacobian, shaped f(x).shape + x.shape (a tuple for several wrt)",
    "jvp": "J t, with the extra argument `tangent` (one `tangent_<name>` per wrt argument)",
    "vjp": "c^T J, with the extra argument `cotangent` (shaped like f's output)",
    "hvp": "H v of a scalar-valued f, with the extra argument `vector` (shaped like x)",
}


def _extra_names(derivative: str | None, wrt: tuple[str, ...]) -> tuple[str, ...]:
    if derivative == "jvp":
        return ("tangent",) if len(wrt) == 1 else tuple(f"tangent_{w}" for w in wrt)
    return {"vjp": ("cotangent",), "hvp": ("vector",)}.get(derivative or "", ())


def _substituting(f: Callable, primals: Sequence[Any], positions: Sequence[int]) -> Callable:
    """``f`` as a function of the arguments at ``positions`` only, the others fixed."""

    def g(*chosen):
        args = list(primals)
        for i, value in zip(positions, chosen):
            args[i] = value
        return f(*args)

    return g


def reference_for(f: Callable, derivative: str, positions: tuple[int, ...], arity: int) -> Callable:
    """The autodiff reference of ``derivative`` of ``f`` w.r.t. the arguments at ``positions``.

    It takes ``f``'s ``arity`` arguments followed by the extra direction arguments, like the
    closed form it is compared with.
    """
    single = positions[0] if len(positions) == 1 else positions

    if derivative in ("derivative", "second_derivative"):
        (i,) = positions

        def elementwise(*args):
            scalar = _substituting(f, args, (i,))
            d = jax.grad(scalar)
            d = jax.grad(d) if derivative == "second_derivative" else d
            x = args[i]
            return jax.vmap(d)(jnp.ravel(x)).reshape(jnp.shape(x))

        return elementwise
    if derivative == "gradient":
        return jax.grad(f, argnums=single)
    if derivative == "jacobian":
        return jax.jacfwd(f, argnums=single)

    def with_direction(*args):
        primals, directions = args[:arity], args[arity:]
        g = _substituting(f, primals, positions)
        chosen = tuple(primals[i] for i in positions)
        if derivative == "jvp":
            return jax.jvp(g, chosen, tuple(directions))[1]
        if derivative == "vjp":
            cotangents = jax.vjp(g, *chosen)[1](directions[0])
            return cotangents[0] if len(positions) == 1 else cotangents
        return jax.jvp(jax.grad(g), chosen, tuple(directions))[1]  # hvp

    return with_direction


def autodiff(forward: Callable[..., Any], derivative: Derivative, *, wrt: str | Sequence[str] | None = None
             ) -> Callable[..., Any]:
    """The autodiff truth of ``derivative`` of ``forward``: a claim's ``reference``.

    The same vocabulary and the same truth as :func:`check` (:data:`DERIVATIVES`): the
    result takes ``forward``'s arguments, followed for ``jvp``, ``vjp`` and ``hvp`` by the
    direction (declare it as an :class:`~derivcheck.claims.Arg` of kind ``direction``).
    ``wrt``: the differentiated argument name(s), default the first.

    Raises:
      InvalidArgument: an unknown derivative, or a ``wrt`` that names no argument.
    """
    if derivative not in DERIVATIVES:
        raise InvalidArgument(f"unknown derivative {derivative!r}; choose from: {', '.join(DERIVATIVES)}")
    try:
        names = tuple(inspect.signature(forward).parameters)
    except (TypeError, ValueError):
        raise InvalidArgument(f"autodiff needs a Python function with named arguments, got {forward!r}") from None
    chosen = _wrt_names(wrt, names, names[:1])
    if derivative in ("derivative", "second_derivative") and len(chosen) != 1:
        raise InvalidArgument(f"an elementwise {derivative} is taken with respect to one argument, got {chosen}")
    truth = reference_for(forward, derivative, tuple(names.index(w) for w in chosen), len(names))
    truth.__name__ = f"{derivative}_of_{_name_of(forward)}"
    return truth


def _check_forward(f: Callable, derivative: str, avals: Sequence[jax.ShapeDtypeStruct],
                   positions: tuple[int, ...], name: str) -> jax.ShapeDtypeStruct:
    """``f``'s output shape; :class:`InvalidArgument` where the derivative does not apply."""
    if derivative in ("derivative", "second_derivative", "hvp") and len(positions) != 1:
        raise InvalidArgument(f"derivative={derivative!r} takes one wrt argument, got {len(positions)}")
    try:
        out = jax.eval_shape(f, *avals)
        if derivative in ("derivative", "second_derivative"):
            i = positions[0]
            scalar_avals = [*avals[:i], jax.ShapeDtypeStruct((), avals[i].dtype), *avals[i + 1:]]
            elementwise_out = jax.eval_shape(f, *scalar_avals)
    except TRACER_ERRORS as exc:
        raise InvalidArgument(
            f"the reference {name} must be written in JAX (autodiff needs to trace it): {type(exc).__name__}"
        ) from None
    except Exception as exc:
        raise ClaimError(f"the reference {name} raised {type(exc).__name__}: {exc}") from exc
    leaves = jax.tree_util.tree_leaves(out)
    if derivative in ("derivative", "second_derivative"):
        if getattr(elementwise_out, "shape", None) != ():
            raise InvalidArgument(
                f"derivative={derivative!r} needs {name} to map a scalar to a scalar (applied elementwise); "
                "use 'jacobian', 'jvp' or 'vjp' for other functions"
            )
    elif derivative in ("gradient", "hvp"):
        if len(leaves) != 1 or leaves[0].shape != ():
            raise InvalidArgument(
                f"derivative={derivative!r} needs {name} to return a scalar; it returns "
                f"{jax.tree_util.tree_map(lambda a: a.shape, out)}: use 'jacobian' or 'vjp'"
            )
    elif derivative == "vjp" and len(leaves) != 1:
        raise InvalidArgument(f"derivative='vjp' needs {name} to return one array, not a pytree")
    return leaves[0] if leaves else out


def _directions(f: Callable, derivative: str | None, wrt: tuple[str, ...], positions: tuple[int, ...],
                name: str) -> Callable[[dict[str, jax.ShapeDtypeStruct]], dict[str, jax.ShapeDtypeStruct]]:
    """The direction arguments (tangents, cotangent, Hessian vector) the closed form takes
    after ``f``'s, by input shapes; ``f`` is checked against ``derivative`` once per shape."""
    names = _extra_names(derivative, wrt)
    seen: dict[tuple, dict[str, jax.ShapeDtypeStruct]] = {}

    def directions(avals: dict[str, jax.ShapeDtypeStruct]) -> dict[str, jax.ShapeDtypeStruct]:
        key = tuple(avals.values())
        if derivative is None:
            return {}
        if key not in seen:
            wide = [jax.ShapeDtypeStruct(a.shape, jnp.float64) for a in avals.values()]
            out = _check_forward(f, derivative, wide, positions, name)
            if derivative == "vjp":
                seen[key] = {"cotangent": jax.ShapeDtypeStruct(out.shape, key[0].dtype)}
            else:
                seen[key] = {n: avals[w] for n, w in zip(names, wrt)}
        return seen[key]

    return directions


def _input_names(inputs: Any, fn: Callable) -> tuple[str, ...]:
    """The arguments' names: the declarations' keys, or ``fn``'s parameters for a strategy."""
    if isinstance(inputs, st.SearchStrategy):
        return _strategy_names(fn)
    if isinstance(inputs, Mapping):
        return tuple(_declared(inputs))
    raise InvalidArgument(
        f"inputs must be a mapping {{name: declaration}} or a Hypothesis strategy, got {type(inputs).__name__}"
    )


def _name_of(fn: Any) -> str:
    return getattr(fn, "__name__", None) or type(fn).__name__


def _module_of(fn: Any) -> str:
    return getattr(fn, "__module__", None) or "user code"


def _profile_and_seed(profile: str | None, seed: int | None) -> tuple[str, int]:
    """Unset profile and seed come from ``DERIVCHECK_PROFILE`` / ``DERIVCHECK_SEED`` (else ci, 0)."""
    if profile is None:
        profile = os.environ.get("DERIVCHECK_PROFILE", "ci")
    if seed is None:
        text = os.environ.get("DERIVCHECK_SEED", "0")
        if not text.isdigit():
            raise InvalidArgument(f"DERIVCHECK_SEED must be a non-negative integer, got {text!r}")
        seed = int(text)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise InvalidArgument(f"seed must be a non-negative int, got {seed!r}")
    return profile, seed


def _replay(call: str, name: str, dtype: str, seed: int, profile: str, examples: int) -> str:
    """How to run the same check again: the pytest node under pytest, else the call."""
    test = os.environ.get("PYTEST_CURRENT_TEST")
    if test:
        node = test.rsplit(" (", 1)[0]
        return f"DERIVCHECK_SEED={seed} DERIVCHECK_PROFILE={profile} python -m pytest '{node}'"
    return f"derivcheck.{call}({name}, ..., dtype={dtype!r}, seed={seed}, profile={profile!r}, examples={examples})"


def _wrt_names(wrt: str | Sequence[str] | None, names: Sequence[str], default: Sequence[str]) -> tuple[str, ...]:
    chosen = tuple(default) if wrt is None else (wrt,) if isinstance(wrt, str) else tuple(wrt)
    unknown = [w for w in chosen if w not in names]
    if unknown or not chosen:
        raise InvalidArgument(f"wrt {wrt!r} must name inputs among {', '.join(names)}")
    return chosen


def _kinks_by_name(kinks, wrt: tuple[str, ...], names: Sequence[str]) -> dict[str, tuple[float, ...]]:
    """``kinks`` as a mapping; a bare sequence belongs to the one wrt argument."""
    if kinks is None:
        return {}
    if not isinstance(kinks, Mapping):
        if len(wrt) != 1:
            raise InvalidArgument("with several wrt arguments, give kinks as a mapping {name: (values, ...)}")
        kinks = {wrt[0]: kinks}
    out = {}
    for name, values in kinks.items():
        if name not in names:
            raise InvalidArgument(f"kinks given for {name!r}, which is not an input ({', '.join(names)})")
        try:
            values = tuple(float(v) for v in (values if isinstance(values, Sequence) else (values,)))
        except (TypeError, ValueError):
            raise InvalidArgument(f"kinks of {name!r} must be numbers, got {values!r}") from None
        if not all(math.isfinite(v) for v in values):
            raise InvalidArgument(f"kinks of {name!r} must be finite, got {values!r}")
        out[name] = values
    return out


def _declared(inputs: Mapping[str, Any]) -> dict[str, Input]:
    out = {}
    for name, spec in inputs.items():
        if not isinstance(name, str) or not name.isidentifier():
            raise InvalidArgument(f"input names must be identifiers, got {name!r}")
        if isinstance(spec, tuple):
            spec = Input("real", spec)
        if not isinstance(spec, Input):
            raise InvalidArgument(
                f"input {name!r}: expected a declaration such as derivcheck.real(shape=(3,)) or a shape "
                f"tuple, got {type(spec).__name__}"
            )
        out[name] = spec
    if not out:
        raise InvalidArgument("inputs must declare at least one argument")
    return out


@dataclasses.dataclass(frozen=True)
class _Pair:
    """What is compared: closed form and reference over named arguments."""

    name: str
    location: str
    checked_against: str
    closed_form: Callable
    reference: Callable
    names: tuple[str, ...]
    #: How arguments move to either side of a tie found in the reference (Claim.sided).
    sided: tuple | None = None


def _sided(arity: int, extra: int, positions: tuple[int, ...], along_tangents: bool) -> tuple:
    """Tie points are left along the check's own direction: a jvp's primals along their
    tangents (the one-sided directional derivatives bracket every valid rule's J t);
    otherwise the wrt arguments by different multiples of a small step, so that a tie
    between two of them (max(x, y) at x = y) is broken too."""
    spec: list[Any] = [None] * (arity + extra)
    for k, i in enumerate(positions):
        spec[i] = (1.0, arity + k) if along_tangents else (float(k + 1), None)
    return tuple(spec)


def _run(pair: _Pair, call: str, inputs, directions: Callable[[dict[str, jax.ShapeDtypeStruct]], dict],
         kinks: dict[str, tuple[float, ...]], dtype: str, examples: int | None, seed: int | None,
         profile: str | None, device, precision: str, mesh: int | str = 1, prove: bool = False) -> Result:
    """Check ``pair`` as one claim: on declared inputs (bulk) or a strategy (point by point)."""
    profile, seed = _profile_and_seed(profile, seed)
    prof, examples, dev = check_arguments(profile, dtype, precision, examples, device, mesh=mesh)
    document = Document(key="user", seed=_module_of(pair.closed_form), title=pair.name, author="")
    closed_form, sided = pair.closed_form, pair.sided
    if isinstance(inputs, st.SearchStrategy):
        domain = Domain(tuple(Arg(n, kinks=kinks.get(n, ())) for n in pair.names), strategy=inputs,
                        directions=directions)
    else:
        declared = _declared(inputs)
        avals = {n: jax.ShapeDtypeStruct(d.shape, jnp.dtype(dtype)) for n, d in declared.items()}
        extra = directions(avals)
        args = [Arg(n, d.shape, d.kind, float(d.bound), kinks.get(n, ())) for n, d in declared.items()]
        args += [Arg(n, s.shape, "direction", DIRECTION_BOUND) for n, s in extra.items()]
        domain = Domain(tuple(args))
        all_avals = tuple(jax.ShapeDtypeStruct(a.shape, jnp.dtype(dtype)) for a in args)
        closed_form = usable_closed_form(pair.closed_form, all_avals, pair.name)
        sided = sided and sided[:len(args)]
    claim = Claim(id=pair.name, document=document, location=pair.location, statement="",
                  closed_form=closed_form, reference=pair.reference, domain=domain,
                  checked_against=pair.checked_against, sided=sided)
    result = verify(claim, dtype=dtype, examples=examples, seed=seed, profile=prof.name, device=dev,
                    precision=precision)
    if result.vacuous:
        warnings.warn(f"{pair.name}: vacuous check: {result.vacuous}", VacuousCheckWarning, stacklevel=4)
    proof = None
    if prove:
        from derivcheck._prove import prove_closed_form  # SymPy loads only when a proof is asked for

        proof = prove_closed_form(closed_form, pair.reference, domain, seed=seed).to_json()
    return dataclasses.replace(result, replay=_replay(call, pair.name, dtype, seed, prof.name, examples), proof=proof)


@scoped
def check(
    closed_form: Callable[..., Any],
    reference: Callable[..., Any],
    *,
    inputs: Mapping[str, Any] | st.SearchStrategy,
    derivative: Derivative | None = None,
    wrt: str | Sequence[str] | None = None,
    kinks: Sequence[float] | Mapping[str, Sequence[float]] | None = None,
    dtype: str = "float64",
    examples: int | None = None,
    seed: int | None = None,
    profile: str | None = None,
    device: str | jax.Device | None = None,
    precision: str = "highest",
    mesh: int | str = 1,
    vectorized: bool | None = None,
    name: str | None = None,
    prove: bool = False,
) -> Result:
    r"""Check a hand-written derivative against JAX autodiff; return the :class:`Result`.

    With ``derivative`` named, ``reference`` is the forward function :math:`f` and the
    truth is autodiff of it (:data:`DERIVATIVES`); with ``derivative=None`` it is an explicit
    reference taking the same arguments as ``closed_form``. The closed form is judged at
    every point against the float64 truth within the rounding-error bound of both
    computations (:mod:`derivcheck.tolerance`); at a declared kink it must lie between the
    one-sided derivatives.

    Args:
      closed_form: the derivative by hand. JAX code is traced, batched and compiled; code
        JAX cannot trace (NumPy) runs on the host, vectorised over the batch where that
        gives the same values, point by point otherwise (:mod:`derivcheck._host`).
      reference: the forward function ``f(*inputs)`` (written in JAX), or the explicit truth.
      inputs: ``{name: declaration}`` in ``f``'s argument order, a declaration being
        ``derivcheck.real(shape=...)`` and friends (:mod:`derivcheck.declare`) or a shape
        tuple; or a Hypothesis strategy drawing ``{name: array}`` (or a tuple) per point,
        names then taken from ``reference``'s signature; it draws ``(examples + 1) * 25``
        points one at a time, each with its kink variants.
      derivative: which derivative of ``reference`` to take, or None (explicit reference).
      wrt: the argument(s) differentiated, by name; defaults to the first input.
      kinks: values where ``f`` is not differentiable, always among the inputs: a sequence
        (for the one ``wrt`` argument) or ``{name: values}``.
      dtype: ``"float32"`` or ``"float64"``: the closed form's inputs and outputs.
      examples, seed, profile: the search budget and its seed (``DERIVCHECK_SEED``,
        ``DERIVCHECK_PROFILE`` when unset; ``ci`` and 0 by default).
      device, precision, mesh: as for :func:`derivcheck.verify` (the float64 truth runs on
        the host CPU where ``device`` has no float64; ``$DERIVCHECK_REFERENCE_DEVICE``
        forces its device, for testing).
      vectorized: for host closed forms, force a whole-batch call (True) or point-by-point
        calls (False) instead of trying.
      name: the name in results and messages (default: the closed form's).
      prove: also prove or disprove the closed form exactly at the declared shapes (SymPy,
        :mod:`derivcheck._prove`): ``result.proof`` holds the verdict (``proved``,
        ``disproved`` with the exact difference and a rational counterexample, ``not
        attempted``, ``timed out``, ``inconclusive``); ``result.verdict`` is unchanged.

    Raises:
      InvalidArgument: a bad argument to ``check`` itself.
      ClaimError: a function that raised or returned the wrong shape, dtype or structure.
    """
    if derivative is not None and derivative not in DERIVATIVES:
        raise InvalidArgument(f"unknown derivative {derivative!r}; choose one of {', '.join(DERIVATIVES)} or None")
    if not callable(reference):
        raise InvalidArgument(f"reference must be callable, got {type(reference).__name__}")
    if not callable(closed_form):
        raise InvalidArgument(f"closed_form must be callable, got {type(closed_form).__name__}")
    name = name or _name_of(closed_form)
    ref_name = _name_of(reference)
    cf = HostClosedForm(closed_form, vectorized) if vectorized is not None else closed_form

    names = _input_names(inputs, reference if derivative is not None else closed_form)
    wrt_names = _wrt_names(wrt, names, names[:1])
    positions = tuple(names.index(w) for w in wrt_names)
    kinks_of = _kinks_by_name(kinks, wrt_names, names)
    directions = _directions(reference, derivative, wrt_names, positions, ref_name)
    if derivative is None:
        ref, location, against = reference, f"explicit reference {ref_name}", f"{ref_name} (explicit reference)"
    else:
        ref = reference_for(reference, derivative, positions, len(names))
        location = f"{derivative} of {ref_name} w.r.t. {', '.join(wrt_names)}"
        against = f"JAX autodiff: {derivative} of {ref_name}"
    extra = len(_extra_names(derivative, wrt_names)) if derivative in ("jvp", "hvp") else int(derivative == "vjp")
    sided = None if derivative is None else _sided(len(names), extra, positions, derivative == "jvp")
    pair = _Pair(name, location, against, cf, ref, names, sided)
    return _run(pair, "check", inputs, directions, kinks_of, dtype, examples, seed, profile, device, precision,
                mesh, prove)


def _strategy_names(fn: Callable) -> tuple[str, ...]:
    """Argument names when inputs come from a strategy: the forward function's parameters."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        raise InvalidArgument(
            f"with a strategy for inputs, {_name_of(fn)} needs an inspectable signature to name its arguments"
        ) from None
    names = tuple(p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD))
    if not names:
        raise InvalidArgument(f"{_name_of(fn)} takes no positional arguments")
    return names


_CUSTOM_CALLS = frozenset({"custom_jvp_call", "custom_vjp_call", "custom_vjp_call_jaxpr"})


def _bind_all(jaxpr, consts, args, strip: bool) -> list[Any]:
    """Evaluate a jaxpr by binding its equations; with ``strip``, the first custom rule met
    on every path is replaced by its primal definition (evaluated as it is)."""
    env: dict[Any, Any] = dict(zip(jaxpr.constvars, consts))
    env.update(zip(jaxpr.invars, args))

    def read(v):
        return v.val if isinstance(v, jax.extend.core.Literal) else env[v]

    for eqn in jaxpr.eqns:
        invals = [read(v) for v in eqn.invars]
        inner = nested_jaxpr(eqn)
        if strip and inner is not None and eqn.primitive.name in _CUSTOM_CALLS:
            outs = _bind_all(*inner, invals, strip=False)
        elif strip and inner is not None and eqn.primitive.name in ("pjit", "jit", "closed_call", "remat2"):
            outs = _bind_all(*inner, invals, strip=True)
        else:
            outs = eqn.primitive.bind(*invals, **eqn.params)
            outs = outs if eqn.primitive.multiple_results else [outs]
        env.update(zip(eqn.outvars, outs))
    return [read(v) for v in jaxpr.outvars]


def _definition_of(f: Callable) -> Callable:
    """``f`` with its custom differentiation rule taken away: the primal definition that the
    rule stands in for (``f.fun`` for a ``custom_jvp``/``custom_vjp`` object; for a wrapper
    such as ``jnp.logaddexp``, the custom rules first met inside it)."""
    if isinstance(f, jax.custom_jvp | jax.custom_vjp):
        return f.fun

    def definition(*args):
        closed, out_shape = jax.make_jaxpr(f, return_shape=True)(*args)
        outs = _bind_all(closed.jaxpr, closed.consts, jax.tree_util.tree_leaves(args), strip=True)
        return jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(out_shape), outs)

    return definition


def _has_custom_rule(f: Callable, avals) -> bool:
    def walk(jaxpr) -> bool:
        for eqn in jaxpr.eqns:
            if eqn.primitive.name in _CUSTOM_CALLS:
                return True
            inner = nested_jaxpr(eqn)
            if inner is not None and walk(inner[0]):
                return True
        return False

    try:
        return walk(jax.make_jaxpr(f)(*avals).jaxpr)
    except Exception:
        return False


def _custom_rule_pair(f, kind: str, names: tuple[str, ...], wrt: tuple[str, ...], name: str | None,
                      reference: Callable | None) -> _Pair:
    positions = tuple(names.index(w) for w in wrt)
    arity = len(names)

    def rule_of(fn):
        def rule(*args):
            primals, directions = args[:arity], args[arity:]
            g = _substituting(fn, primals, positions)
            chosen = tuple(primals[i] for i in positions)
            if kind == "vjp":
                out, pull = jax.vjp(g, *chosen)
                return {"primal": out, **{f"vjp wrt {w}": c for w, c in zip(wrt, pull(directions[0]))}}
            out, tangent = jax.jvp(g, chosen, tuple(directions))
            return {"primal": out, "jvp": tangent}

        return rule

    fname = _name_of(f)
    if reference is None:
        truth, against = _definition_of(f), f"JAX autodiff of the primal definition of {fname}"
    else:
        truth, against = reference, f"JAX autodiff of {_name_of(reference)} (explicit reference)"
    extra = len(wrt) if kind == "jvp" else 1
    return _Pair(name or fname, f"custom_{kind} rule of {fname} w.r.t. {', '.join(wrt)}", against,
                 rule_of(f), rule_of(truth), names, _sided(arity, extra, positions, kind == "jvp"))


def _check_custom(f, kind: str, inputs, wrt, kinks, name, reference, options) -> Result:
    cls = jax.custom_vjp if kind == "vjp" else jax.custom_jvp
    if not callable(f):
        raise InvalidArgument(f"check_custom_{kind} needs a callable, got {type(f).__name__}")
    if reference is not None and not callable(reference):
        raise InvalidArgument(f"reference must be a forward function, got {type(reference).__name__}")
    signature_of = f.fun if isinstance(f, jax.custom_jvp | jax.custom_vjp) else f
    names = _input_names(inputs, signature_of)
    if not isinstance(f, cls) and reference is None:
        avals = ([jax.ShapeDtypeStruct(d.shape, jnp.float64) for d in _declared(inputs).values()]
                 if isinstance(inputs, Mapping) else None)
        if avals is None or not _has_custom_rule(f, avals):
            raise InvalidArgument(
                f"check_custom_{kind} needs a function with a custom rule (@jax.custom_{kind}, or one that "
                f"calls such a function), got {_name_of(f)} without one; or pass reference=<forward function>"
            )
    fixed = set(getattr(f, "nondiff_argnums", ()) or ())
    wrt_names = _wrt_names(wrt, names, [n for i, n in enumerate(names) if i not in fixed])
    if any(names.index(w) in fixed for w in wrt_names):
        raise InvalidArgument(f"wrt {wrt_names} includes a nondiff_argnums argument of {_name_of(f)}")
    kinks_of = _kinks_by_name(kinks, wrt_names, names)
    pair = _custom_rule_pair(f, kind, names, wrt_names, name, reference)
    positions = tuple(names.index(w) for w in wrt_names)
    directions = _directions(signature_of, kind, wrt_names, positions, _name_of(f))
    return _run(pair, f"check_custom_{kind}", inputs, directions, kinks_of, **options)


@scoped
def check_custom_vjp(
    f: Callable[..., Any],
    *,
    inputs: Mapping[str, Any] | st.SearchStrategy,
    wrt: str | Sequence[str] | None = None,
    kinks: Sequence[float] | Mapping[str, Sequence[float]] | None = None,
    dtype: str = "float64",
    examples: int | None = None,
    seed: int | None = None,
    profile: str | None = None,
    device: str | jax.Device | None = None,
    precision: str = "highest",
    mesh: int | str = 1,
    name: str | None = None,
    reference: Callable[..., Any] | None = None,
) -> Result:
    r"""Check the rule of a ``jax.custom_vjp`` function against autodiff of its primal.

    For inputs :math:`x` and a cotangent :math:`c` (drawn for you, shaped like the output),
    the rule's primal output and :math:`c^\top J` (through ``fwd``/``bwd``) are compared
    with ``f``'s undecorated definition and ``jax.vjp`` of it. Outputs are named ``primal``
    and ``vjp wrt <name>``; ``wrt`` defaults to every input not in ``nondiff_argnums``.

    ``f`` may also be a function that calls custom rules (a ``jax.numpy`` ufunc such as
    ``jnp.logaddexp``); the truth is then autodiff of ``f`` with those rules replaced by
    their primal definitions. A custom rule often exists because that autodiff is wrong
    somewhere (``logaddexp``'s definition through ``max`` and ``|x1 - x2|`` gives 1 at a tie,
    the rule 1/2): pass ``reference=`` (another forward function of the same arguments,
    whose autodiff is the truth) for such points. Other arguments as for :func:`check`.
    """
    options = dict(dtype=dtype, examples=examples, seed=seed, profile=profile, device=device, precision=precision,
                   mesh=mesh)
    return _check_custom(f, "vjp", inputs, wrt, kinks, name, reference, options)


@scoped
def check_custom_jvp(
    f: Callable[..., Any],
    *,
    inputs: Mapping[str, Any] | st.SearchStrategy,
    wrt: str | Sequence[str] | None = None,
    kinks: Sequence[float] | Mapping[str, Sequence[float]] | None = None,
    dtype: str = "float64",
    examples: int | None = None,
    seed: int | None = None,
    profile: str | None = None,
    device: str | jax.Device | None = None,
    precision: str = "highest",
    mesh: int | str = 1,
    name: str | None = None,
    reference: Callable[..., Any] | None = None,
) -> Result:
    r"""Check the rule of a ``jax.custom_jvp`` function against autodiff of its primal.

    For inputs :math:`x` and tangents :math:`t` (drawn for you, one per ``wrt`` argument,
    named ``tangent`` or ``tangent_<name>``), the rule's primal output and :math:`J t` are
    compared with ``jax.jvp`` of ``f``'s undecorated definition. Outputs are named
    ``primal`` and ``jvp``. ``f`` and ``reference`` as for :func:`check_custom_vjp`; other
    arguments as for :func:`check`.
    """
    options = dict(dtype=dtype, examples=examples, seed=seed, profile=profile, device=device, precision=precision,
                   mesh=mesh)
    return _check_custom(f, "jvp", inputs, wrt, kinks, name, reference, options)

