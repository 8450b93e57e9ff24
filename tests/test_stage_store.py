"""Compiled stages kept on disk (derivcheck._stage_store): keyed by value, loaded whole, never stale."""

import dataclasses
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import derivcheck
from derivcheck import _checker, _stage_store
from derivcheck._composed import Composed
from derivcheck.mutants import _Doubled


@pytest.fixture
def store(tmp_path):
    """An empty store for the test, every stage of the process forgotten before and after."""
    _forget_stages()
    with _stage_store.configured(tmp_path):
        yield _stage_store.store()
    _forget_stages()


def _forget_stages():
    for cached in (_checker._closed_form_stage, _checker._outputs_stage, _checker._change_stage,
                   _checker._reference_stage):
        cached.cache_clear()


def _entries(store):
    return sorted(store.directory.glob("*.stage")) if store.directory.exists() else []


class _Compiles:
    """XLA compilations inside the block (JAX's monitoring events)."""

    def __enter__(self):
        self.count = 0
        jax.monitoring.register_event_duration_secs_listener(self._listen)
        return self

    def _listen(self, event, duration, **_):
        if event == "/jax/core/compile/backend_compile_duration":
            self.count += 1

    def __exit__(self, *exc):
        jax.monitoring.unregister_event_duration_listener(self._listen)


def _cumprod_check():
    # cumprod's bound is estimated, not derived: what tracing tells must come back with the stage.
    with pytest.warns(derivcheck.VacuousCheckWarning, match="restates it"):
        result = derivcheck.check(jnp.cumprod, jnp.cumprod, inputs={"x": (3,)}, dtype="float32", examples=2)
    return {k: v for k, v in dataclasses.asdict(result).items() if k != "elapsed_s"}


def test_a_stored_stage_is_loaded_with_what_its_tracing_told(store):
    with _Compiles() as cold:
        first = _cumprod_check()
    assert cold.count > 0 and _entries(store), "nothing was compiled and stored"
    _forget_stages()  # as a new process: nothing compiled in memory
    with _Compiles() as warm:
        second = _cumprod_check()
    assert warm.count == 0, f"{warm.count} stages compiled again"
    assert second == first and "cumprod" in second["estimated_operations"]


def _batch(n=8, size=3, seed=0):
    x = np.random.default_rng(seed).normal(size=(n, size)).astype(np.float32)
    return (jax.device_put(x, jax.devices()[0]),)


def _softsign(x):
    return x / (1 + jnp.abs(x))


def _argument_and_softsign(x):
    return x, _softsign(x)  # the first output's bound is exactly zero: the argument itself


def test_a_composed_stage_is_loaded_with_its_exact_bounds(store):
    composed = Composed(_argument_and_softsign, _Doubled())
    batch = _batch()
    first = jax.device_get(_checker._closed_form_stage(composed, "cpu", "highest", None)(*batch))
    exact = dict(_checker._outputs_stage(_argument_and_softsign, "cpu", "highest", None).exact)
    assert list(exact.values()) == [(True, False)]
    _forget_stages()
    with _Compiles() as warm:
        second = jax.device_get(_checker._closed_form_stage(composed, "cpu", "highest", None)(*batch))
    assert warm.count == 0
    assert dict(_checker._outputs_stage(_argument_and_softsign, "cpu", "highest", None).exact) == exact
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)


def test_a_damaged_entry_is_compiled_again_and_replaced(store):
    batch = _batch()
    first = jax.device_get(_checker._closed_form_stage(_softsign, "cpu", "highest", None)(*batch))
    (entry,) = _entries(store)
    data = bytearray(entry.read_bytes())
    data[len(data) // 2] ^= 0xFF
    entry.write_bytes(bytes(data))
    _forget_stages()
    with _Compiles() as again:
        second = jax.device_get(_checker._closed_form_stage(_softsign, "cpu", "highest", None)(*batch))
    assert again.count == 1
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    assert entry.read_bytes() != bytes(data)  # replaced by a whole one


def test_a_stored_stage_holds_no_source_locations_and_computes_the_same(store):
    batch = _batch()
    unstored = _checker._closed_form_stage(_softsign, "cpu", "highest", None)
    with _stage_store.configured(None):
        first = jax.device_get(unstored(*batch))
        assert "op_name=" in unstored.run.lower(*batch).compile().as_text()
    _forget_stages()
    stored = _checker._closed_form_stage(_softsign, "cpu", "highest", None)
    second = jax.device_get(stored(*batch))
    (entry,) = _entries(store)
    _forget_stages()
    loaded, _ = store.load(entry.stem, batch[0].devices().pop())
    assert "op_name=" not in loaded.as_text()
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)


def test_an_entry_xla_will_not_load_is_compiled_again(store, monkeypatch):
    from jax.experimental import serialize_executable

    batch = _batch()
    first = jax.device_get(_checker._closed_form_stage(_softsign, "cpu", "highest", None)(*batch))
    _forget_stages()

    def refuse(*args, **kwargs):
        raise RuntimeError("INVALID_ARGUMENT: not an executable of this jaxlib")

    monkeypatch.setattr(serialize_executable, "deserialize_and_load", refuse)
    with _Compiles() as again:
        second = jax.device_get(_checker._closed_form_stage(_softsign, "cpu", "highest", None)(*batch))
    assert again.count == 1
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)


def test_a_cache_that_cannot_be_written_is_said_once_and_the_check_goes_on(tmp_path, capfd):
    blocked = tmp_path / "a file, not a folder"
    blocked.write_text("")
    _forget_stages()
    try:
        with _stage_store.configured(blocked):
            results = [_cumprod_check() for _ in range(2)]
            _forget_stages()
            results.append(_cumprod_check())
    finally:
        _forget_stages()
    assert results[0] == results[1] == results[2] and results[0]["verdict"] == "verified"
    notes = [line for line in capfd.readouterr().err.splitlines() if "cannot write to the compile cache" in line]
    assert len(notes) == 1 and "Not a directory" in notes[0], notes


def test_the_key_is_the_computation_by_value():
    def twice(x):
        return x * 2.0

    def twice_again(y):
        return 2.0 * y if False else y * 2.0

    x = jax.ShapeDtypeStruct((3,), jnp.float32)
    assert _stage_store.jaxpr_of(twice, x) == _stage_store.jaxpr_of(twice_again, x)
    assert _stage_store.jaxpr_of(twice, x) != _stage_store.jaxpr_of(lambda x: x * 2.5, x)  # a literal
    assert _stage_store.jaxpr_of(twice, x) != _stage_store.jaxpr_of(twice, jax.ShapeDtypeStruct((4,), jnp.float32))
    weights = np.array([1.0, 2.0, 3.0], np.float32)
    other = weights.copy()
    other[2] = np.nextafter(other[2], np.float32(4))
    assert (_stage_store.jaxpr_of(lambda x: x * weights, x)
            != _stage_store.jaxpr_of(lambda x: x * other, x))  # a constant, to the last bit


def test_a_custom_rule_does_not_change_the_key_but_a_host_callback_has_none():
    def with_rule(tangent_scale):
        @jax.custom_jvp
        def f(x):
            return jnp.sin(x)

        f.defjvp(lambda primals, tangents: (f(*primals), tangent_scale * tangents[0]))
        return f

    x = jax.ShapeDtypeStruct((3,), jnp.float32)
    # The stages evaluate the primal computation; a rule is used only when differentiated,
    # and a reference that differentiates has the rule's result in its own jaxpr.
    assert _stage_store.jaxpr_of(with_rule(1.0), x) == _stage_store.jaxpr_of(with_rule(2.0), x)
    assert (_stage_store.jaxpr_of(jax.grad(lambda v: with_rule(1.0)(v).sum()), x)
            != _stage_store.jaxpr_of(jax.grad(lambda v: with_rule(2.0)(v).sum()), x))

    def on_host(x):
        return jax.pure_callback(np.sin, jax.ShapeDtypeStruct(x.shape, x.dtype), x)

    with pytest.raises(_stage_store.Unkeyable, match="pure_callback"):
        _stage_store.jaxpr_of(on_host, x)


def test_a_stage_without_a_key_is_compiled_and_not_stored(store):
    def on_host(x):
        return jax.pure_callback(lambda v: np.asarray(v) * 2, jax.ShapeDtypeStruct(x.shape, x.dtype), x,
                                 vmap_method="expand_dims")

    batch = _batch()
    out, _ = _checker._closed_form_stage(on_host, "cpu", "highest", None)(*batch)
    np.testing.assert_array_equal(np.asarray(out)[:, :3], 2 * np.asarray(batch[0], np.float64))
    assert _entries(store) == []


def test_an_executable_from_jax_s_cache_is_used_but_not_stored(store):
    lowered = jax.jit(_softsign).lower(*_batch())

    class FromJaxCache:
        def compiler_ir(self, dialect=None):
            return lowered.compiler_ir(dialect)

        def compile(self):
            _stage_store._JAX_CACHE_HITS[0] += 1  # what JAX's cache-hit event does
            return lowered.compile()

    compiled = store.compile("from-jax", FromJaxCache(), lambda: {"estimated": []})
    np.testing.assert_allclose(compiled(*_batch()), _softsign(_batch()[0]))
    assert _entries(store) == []
    store.compile("compiled", lowered, lambda: {"estimated": []})
    assert [p.stem for p in _entries(store)] == ["compiled"]


def test_only_the_last_engines_stages_are_kept(tmp_path):
    store = _stage_store.StageStore(tmp_path)
    for k in range(_stage_store.GENERATIONS + 2):
        old = tmp_path / f"engine-{k}"
        old.mkdir()
        os.utime(old, (1_000_000 + k, 1_000_000 + k))
    store.save("key", jax.jit(_softsign).lower(*_batch()).compile(), {"estimated": []})
    kept = sorted(p.name for p in tmp_path.iterdir())
    newest = [f"engine-{k}" for k in range(_stage_store.GENERATIONS + 2)][-(_stage_store.GENERATIONS - 1):]
    assert kept == sorted([store.directory.name, *newest])


def test_pruning_beside_another_process_that_prunes_too(tmp_path, monkeypatch):
    # The other process removes a folder after this one has seen it (its first stat) and
    # before this one reads its time (the second).
    store = _stage_store.StageStore(tmp_path)
    for k in range(_stage_store.GENERATIONS + 1):
        (tmp_path / f"engine-{k}").mkdir()
    gone = tmp_path / "engine-0"
    seen = []
    stat = type(tmp_path).stat

    def racing_stat(self, **kwargs):
        if self == gone:
            seen.append(self)
            if len(seen) > 1:
                raise FileNotFoundError(2, "No such file or directory", str(self))
        return stat(self, **kwargs)

    monkeypatch.setattr(type(tmp_path), "stat", racing_stat)
    assert store.save("key", jax.jit(_softsign).lower(*_batch()).compile(), {"estimated": []})
    assert len(seen) > 1 and (store.directory / f"key{_stage_store._SUFFIX}").exists()


def test_one_change_serves_outputs_of_other_names(store):
    # A change is one stage for every closed form with outputs of its shapes, whatever the
    # outputs are named: the loaded executable is kept per input structure, not per shapes.
    def named(first, second):
        return lambda x: {first: _softsign(x), second: 2 * x}

    batch = _batch()
    rows = [jax.device_get(_checker._closed_form_stage(Composed(named(*names), _Doubled()), "cpu", "highest", None)
                           (*batch)) for names in (("a", "b"), ("d", "c"))]  # leaves in key order
    np.testing.assert_array_equal(rows[0][0][:, :6], rows[1][0][:, np.r_[3:6, 0:3]])


_LOAD_IN_A_FRESH_PROCESS = """
import sys
import jax, jax.numpy as jnp, numpy as np
from derivcheck._config import for_this_process
from derivcheck import _checker, _stage_store
for_this_process()
_stage_store.configure(sys.argv[1])
def logdet(a):
    return jnp.linalg.slogdet(a @ a.T + jnp.eye(3, dtype=a.dtype))[1]
x = np.random.default_rng(0).normal(size=(8, 3, 3))
rows, _ = _checker._closed_form_stage(logdet, "cpu", "highest", None)(jax.device_put(x, jax.devices()[0]))
print(repr(np.asarray(rows)[:, 0].tolist()))
"""


def test_a_stored_linear_algebra_stage_runs_in_a_process_that_lowered_none(tmp_path):
    # LAPACK's kernels are set up while a linear-algebra operation is lowered; a process that
    # only loads one would crash running it (derivcheck._compile_cache.ready_to_load).
    import subprocess
    import sys

    def run():
        return subprocess.run([sys.executable, "-c", _LOAD_IN_A_FRESH_PROCESS, str(tmp_path)],
                              capture_output=True, text=True, timeout=300)

    compiled, loaded = run(), run()
    assert compiled.returncode == 0, compiled.stderr[-2000:]
    assert list(tmp_path.rglob("*.stage")), "the stage was not stored"
    assert loaded.returncode == 0, f"exit {loaded.returncode}: {loaded.stderr[-2000:]}"
    assert loaded.stdout == compiled.stdout
