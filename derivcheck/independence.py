"""DESIGN.md principle 1 for any catalog: a closed form is not computed by the truth.

A claim checked against autodiff proves nothing if its closed form calls autodiff, or calls
its own reference: it would be compared with itself. :func:`problems` reads the source of a
claim's closed form and of every function of the same module it calls (by name, to any
depth), and names each call of a JAX autodiff transformation and each use of the claim's
reference or of a function from the reference's module. ``derivcheck verify --catalog``
refuses a catalog with problems unless told otherwise; the bundled catalog has none (a test).

A function whose source cannot be read (a builtin, a function made at run time) is not
inspected; the check is a guard against mistakes, not a proof.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
import types
from collections.abc import Callable, Iterable
from typing import Any

from derivcheck.claims import Claim

__all__ = ["AUTODIFF", "problems", "problems_of"]

#: The JAX transformations that compute derivatives (or define derivative rules).
AUTODIFF = frozenset({"grad", "value_and_grad", "jvp", "vjp", "jacfwd", "jacrev", "hessian", "linearize",
                      "jacobian", "custom_jvp", "custom_vjp", "autodiff"})


def _autodiff_objects() -> dict[int, str]:
    import jax

    from derivcheck._api import autodiff

    found = {id(getattr(jax, name)): f"jax.{name}" for name in AUTODIFF if hasattr(jax, name)}
    found[id(autodiff)] = "derivcheck.autodiff"
    return found


def _tree(fn: Callable[..., Any]) -> ast.AST | None:
    try:
        return ast.parse(textwrap.dedent(inspect.getsource(fn)))
    except (OSError, TypeError, SyntaxError, IndentationError):
        return None


def _resolve(node: ast.AST, namespace: dict[str, Any]) -> Any:
    """The object a name or dotted attribute refers to in ``namespace``, else None."""
    if isinstance(node, ast.Name):
        return namespace.get(node.id)
    if isinstance(node, ast.Attribute):
        owner = _resolve(node.value, namespace)
        return getattr(owner, node.attr, None) if owner is not None else None
    return None


def _reference_module(claim: Claim) -> str | None:
    module = getattr(claim.reference, "__module__", None)
    closed_module = getattr(claim.closed_form, "__module__", None)
    # A catalog in one file holds both sides: only a separate reference module is off limits.
    return module if module not in (None, closed_module) and not str(module).startswith(("jax", "derivcheck")) \
        else None


def problems(claim: Claim) -> tuple[str, ...]:
    """Why ``claim``'s closed form is not independent of its truth (empty: no reason found)."""
    found: list[str] = []
    transformations = _autodiff_objects()
    reference_module = _reference_module(claim)
    seen: set[int] = set()
    pending: list[Callable[..., Any]] = [claim.closed_form]
    while pending:
        fn = pending.pop()
        fn = getattr(fn, "__wrapped__", fn)
        if id(fn) in seen or not isinstance(fn, types.FunctionType):
            continue
        seen.add(id(fn))
        tree = _tree(fn)
        if tree is None:
            continue
        namespace = {**fn.__globals__, **inspect.getclosurevars(fn).nonlocals}
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Name, ast.Attribute)):
                continue
            target = _resolve(node, namespace)
            label = ast.unparse(node)
            if target is not None and id(target) in transformations:
                found.append(f"{fn.__name__} calls autodiff ({label})")
            elif target is claim.reference or (target is not None and target is claim.reference_right):
                found.append(f"{fn.__name__} uses its own reference ({label})")
            elif reference_module and getattr(target, "__module__", None) == reference_module \
                    and callable(target):
                found.append(f"{fn.__name__} uses {label} from the reference's module {reference_module}")
            elif isinstance(target, types.FunctionType) and target.__module__ == fn.__module__:
                pending.append(target)
    return tuple(dict.fromkeys(found))


def problems_of(claims: Iterable[Claim]) -> list[str]:
    """One line per claim with problems: ``<id>: <problem>; ...``."""
    return [f"{claim.id}: {'; '.join(p)}" for claim in claims if (p := problems(claim))]
