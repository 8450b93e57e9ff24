"""The JAX settings a check needs, scoped to the check: importing derivcheck changes nothing.

The reference runs in float64 (``jax_enable_x64``) and float32 matrix products are checked
at full float32 precision unless asked otherwise. A library must not switch these on for a
whole process, where they would change the dtypes and precision of every other test in a
user's suite: the public entry points run under :func:`checking`, and only derivcheck's own
processes (the CLI, its worker processes) set them for good (:func:`for_this_process`).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import jax

__all__ = ["checking", "for_this_process", "scoped"]

F = TypeVar("F", bound=Callable[..., Any])


@contextlib.contextmanager
def checking() -> Iterator[None]:
    """float64 enabled and full-precision matmuls, for the duration of a check."""
    with jax.enable_x64(True), jax.default_matmul_precision("highest"):
        yield


def scoped(fn: F) -> F:
    """``fn`` run under :func:`checking`."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with checking():
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def for_this_process() -> None:
    """The same settings for the whole process: for derivcheck's CLI and workers only."""
    jax.config.update("jax_enable_x64", True)
    jax.config.update("jax_default_matmul_precision", "highest")
