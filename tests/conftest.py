"""JAX made strict for the tests; Hypothesis budgets by profile (DERIVCHECK_PROFILE)."""

import os
import pathlib

import jax
import pytest
from hypothesis import HealthCheck, settings

import derivcheck  # noqa: F401
from derivcheck._compile_cache import install as install_whole_entries
from derivcheck._config import for_this_process
from derivcheck._runner import use_compile_cache

# The tests make float64 arrays of their own: the settings derivcheck scopes to each check,
# for the whole test process.
for_this_process()

jax.config.update("jax_numpy_rank_promotion", "raise")

# One persistent compilation cache for the session, shared by the test workers and the
# command-line runs they start (DERIVCHECK_COMPILE_CACHE): .derivcheck-cache/tests in the
# checkout, or DERIVCHECK_TEST_COMPILE_CACHE=DIR; set to "" for none. Its entries are
# written whole (derivcheck._compile_cache); a JAX whose cache that cannot make so runs the
# tests with none.
COMPILE_CACHE = os.environ.get("DERIVCHECK_TEST_COMPILE_CACHE",
                               str(pathlib.Path(__file__).resolve().parent.parent / ".derivcheck-cache" / "tests"))
if COMPILE_CACHE and install_whole_entries():
    use_compile_cache(COMPILE_CACHE)
    os.environ.setdefault("DERIVCHECK_COMPILE_CACHE", COMPILE_CACHE)


# Profiles for the tests' own Hypothesis properties; the catalog's budgets are
# derivcheck's profiles of the same names (derivcheck.profiles).
_COMMON = dict(deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("ci", max_examples=30, derandomize=True, **_COMMON)
settings.register_profile("dev", max_examples=60, **_COMMON)
settings.register_profile("thorough", max_examples=500, **_COMMON)
PROFILE = os.environ.get("DERIVCHECK_PROFILE", "ci")
settings.load_profile(PROFILE)


@pytest.fixture(scope="session")
def profile() -> str:
    return PROFILE


def pytest_terminal_summary(terminalreporter):
    """The mutation kill rates of tests/test_selftest.py, per operator."""
    import json

    from derivcheck._output import _kills, _table
    from derivcheck._selftest import MutantRecord, kill_rates, kill_totals

    records = [
        MutantRecord(**m)
        for report in terminalreporter.stats.get("passed", []) + terminalreporter.stats.get("failed", [])
        if report.when == "call"
        for key, value in getattr(report, "user_properties", [])
        if key == "mutants"
        for m in json.loads(value)
    ]
    if records:
        killed, counted, _ = kill_totals(records)
        terminalreporter.write_sep("-", f"mutation self-test: {killed} of {counted} mutants killed")
        rows = _kills(kill_rates(records, lambda r: r.operator))
        terminalreporter.write_line(_table(rows, ("operator", "killed", "rate", "equivalent")))
