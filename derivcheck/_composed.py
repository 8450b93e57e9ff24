"""Closed forms built from another one: its arguments reordered, its outputs changed.

Most of the self-test's planted faults (:mod:`derivcheck.mutants`) are of this kind: ``-f``,
``2 f``, ``f / N``, one element of ``f`` moved, ``f`` with two arguments swapped. Declared as
such, they let the checker compile ``f`` once for all of them and each change on its own,
a few operations shared by every claim with outputs of the same shapes
(:func:`derivcheck._checker._closed_form_stage`), instead of compiling ``f`` again for each
fault. Called, they compute what they say, as any closed form.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

__all__ = ["Composed", "Unchanged"]


@dataclasses.dataclass(frozen=True)
class Unchanged:
    """The change of a closed form whose arguments alone are reordered."""

    def __call__(self, out):
        return out


@dataclasses.dataclass(frozen=True, eq=False)
class Composed:
    """``change(base(*(args[k] for k in order)))``; ``order`` None keeps the arguments.

    ``change`` maps the output pytree of one point to another of the same structure; it
    compares by value (a frozen dataclass), so that one compiled change serves every closed
    form it is applied to."""

    base: Callable[..., Any]
    change: Callable[[Any], Any] = Unchanged()
    order: tuple[int, ...] | None = None

    def arguments(self, args: tuple) -> tuple:
        """The arguments ``base`` is given."""
        return args if self.order is None else tuple(args[k] for k in self.order)

    def __call__(self, *args):
        return self.change(self.base(*self.arguments(args)))
