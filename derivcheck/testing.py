"""pytest helpers: one line per derivative in a team's own test suite.

Each helper checks in float32 and float64 (by default) and raises
:class:`DerivativeMismatch`, an ``AssertionError``, whose message says which output and
element, how far off against what tolerance, the minimal input (directions included) and
the command that replays it. Budgets come from ``DERIVCHECK_PROFILE`` (``ci``, ``dev``,
``thorough``) and ``DERIVCHECK_SEED``, so CI and a developer run the same test file::

    def test_softplus_derivative():
        assert_derivative(d_softplus, softplus, derivative="derivative", inputs={"x": derivcheck.real()})
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from derivcheck._api import _profile_and_seed, check, check_custom_jvp, check_custom_vjp
from derivcheck._output import failure_lines
from derivcheck.results import Result

__all__ = ["DerivativeMismatch", "assert_custom_jvp", "assert_custom_vjp", "assert_derivative", "assert_passes",
           "catalog_tests"]

DTYPES = ("float32", "float64")


class DerivativeMismatch(AssertionError):
    """A derivative that does not match autodiff; the message is the readable report."""

    def __init__(self, results: Sequence[Result]):
        self.results = tuple(results)
        super().__init__("\n".join(line for r in self.results for line in failure_lines(r)))


def assert_passes(results: Result | Sequence[Result]) -> None:
    """Raise :class:`DerivativeMismatch` for every result whose verdict is a failure."""
    __tracebackhide__ = True  # pytest shows the caller's line, not this one
    results = (results,) if isinstance(results, Result) else tuple(results)
    failed = [r for r in results if not r.passed]
    if failed:
        raise DerivativeMismatch(failed)


def _each_dtype(run: Callable[..., Result], dtypes: Sequence[str], kwargs: dict[str, Any]) -> list[Result]:
    __tracebackhide__ = True
    results = [run(dtype=dtype, **kwargs) for dtype in dtypes]
    assert_passes(results)
    return results


def assert_derivative(closed_form: Callable[..., Any], reference: Callable[..., Any], *,
                      dtypes: Sequence[str] = DTYPES, **kwargs: Any) -> list[Result]:
    """:func:`derivcheck.check` in each of ``dtypes``; raise if any fails, else the results."""
    __tracebackhide__ = True
    return _each_dtype(lambda **kw: check(closed_form, reference, **kw), dtypes, kwargs)


def assert_custom_vjp(f: Callable[..., Any], *, dtypes: Sequence[str] = DTYPES, **kwargs: Any) -> list[Result]:
    """:func:`derivcheck.check_custom_vjp` in each of ``dtypes``; raise if any fails."""
    __tracebackhide__ = True
    return _each_dtype(lambda **kw: check_custom_vjp(f, **kw), dtypes, kwargs)


def assert_custom_jvp(f: Callable[..., Any], *, dtypes: Sequence[str] = DTYPES, **kwargs: Any) -> list[Result]:
    """:func:`derivcheck.check_custom_jvp` in each of ``dtypes``; raise if any fails."""
    __tracebackhide__ = True
    return _each_dtype(lambda **kw: check_custom_jvp(f, **kw), dtypes, kwargs)


def catalog_tests(source: str, *, dtypes: Sequence[str] = DTYPES) -> Callable[..., None]:
    """One pytest test per claim of a catalog and dtype, from one line in a test file::

        test_my_notes = derivcheck.testing.catalog_tests("docs/my_notes.py")

    ``source`` is what ``--catalog`` takes: a ``.py`` path (relative to the directory pytest
    runs in) or a dotted module name. Each test verifies its claim as ``derivcheck verify``
    does (an erratum passes when its failure is confirmed) and fails with
    :class:`DerivativeMismatch`, whose message ends with the command that replays it.

    Raises:
      derivcheck.catalog.CatalogError: the catalog cannot be loaded (at collection).
    """
    import pytest

    from derivcheck._verify import verify
    from derivcheck.catalog import load

    loaded = load(source)
    cases = [pytest.param(claim, dtype, id=f"{claim.id}-{dtype}") for claim in loaded.claims for dtype in dtypes]

    @pytest.mark.parametrize(("claim", "dtype"), cases)
    def test_claim(claim, dtype) -> None:
        __tracebackhide__ = True
        profile, seed = _profile_and_seed(None, None)
        assert_passes(verify(claim, dtype=dtype, profile=profile, seed=seed))

    return test_claim  # pytest names the tests after the variable it is assigned to
