"""Where checks run: several devices compared, and the matmul precision policy."""

import dataclasses
import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import derivcheck
from derivcheck._bounds import evaluate_with_bound, matmul_input_unit
from derivcheck._output import results_table
from derivcheck._runner import compare_devices

(LINEAR,) = derivcheck.select(pattern="sharma2024/eq17-linear-input-gradient")

# Claims of every kind: an erratum and its correction (shrunk counterexample), a typo at a
# kink, a conditional claim (searched twice), a network; and a NumPy closed form (host path).
_PLACEMENT_RUN = """
import json, os, sys
import numpy as np
import jax.numpy as jnp
import derivcheck
claims = [c for p in ("mnist_notes/mean-cross-entropy*", "sharma2024/eq35-relu-backprop",
                      "mnist_notes/cross-entropy-one-hot", "sharma2024/sec2-network-backprop")
          for c in derivcheck.select(pattern=p)]
runs = {}
for name, where in (("plain", {}), ("split", {"reference_device": "cpu:1"}), ("mesh", {"mesh": 4})):
    runs[name] = [derivcheck.verify(c, dtype=d, **where).to_json() for c in claims for d in ("float32", "float64")]
    os.environ["DERIVCHECK_REFERENCE_DEVICE"] = where.pop("reference_device", "")  # the API's way, for tests
    runs[name].append(derivcheck.check(lambda x: 1 - np.tanh(x) ** 2, jnp.tanh, inputs={"x": (3,)},
                                       derivative="derivative", dtype="float32", **where).to_json())
    del os.environ["DERIVCHECK_REFERENCE_DEVICE"]
json.dump(runs, sys.stdout)
"""


def _placement_runs() -> dict:
    # XLA reads the flag when JAX starts: the runs need a fresh process.
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4", JAX_PLATFORMS="cpu")
    proc = subprocess.run([sys.executable, "-c", _PLACEMENT_RUN], capture_output=True, text=True, env=env,
                          timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


_WHERE = ("device", "reference_device", "mesh", "replay", "elapsed_s")


def test_a_split_placement_and_a_mesh_give_the_plain_results():
    runs = _placement_runs()
    plain = [{k: v for k, v in r.items() if k not in _WHERE} for r in runs["plain"]]
    assert {r["verdict"] for r in plain} >= {"erratum confirmed", "verified", "typo confirmed",
                                             "conditional confirmed"}
    for name, placed in (("split", runs["split"]), ("mesh", runs["mesh"])):
        assert [{k: v for k, v in r.items() if k not in _WHERE} for r in placed] == plain, name
    assert {(r["device"], r["reference_device"], r["mesh"]) for r in runs["plain"]} == {
        ("cpu:0 (cpu)", "cpu:0 (cpu)", 1)}
    assert {(r["device"], r["reference_device"]) for r in runs["split"]} == {("cpu:0 (cpu)", "cpu:1 (cpu)")}
    assert {(r["reference_device"], r["mesh"]) for r in runs["mesh"]} == {("cpu:0 (cpu)", 4)}
    # The replay reproduces the placement; the user check's replay is a Python call.
    assert all(r["replay"].endswith("--reference-device cpu:1") for r in runs["split"][:-1])
    assert all(r["replay"].endswith("--mesh 4") for r in runs["mesh"][:-1])


def test_a_device_without_float64_gets_its_truth_on_the_host(monkeypatch):
    from derivcheck import _placement

    monkeypatch.setattr(_placement, "computes_float64", lambda device: False)
    placement = _placement.placement_for("cpu")
    assert placement.reference_devices == (jax.devices("cpu")[0],)
    with pytest.raises(derivcheck.InvalidArgument, match="does not compute float64"):
        _placement.placement_for("cpu", reference_device="cpu:0")


def test_the_float64_probe_tells_float64_from_its_emulations():
    from derivcheck._placement import _PROBE, _probe, computes_float64, matches_float64

    assert computes_float64(jax.devices("cpu")[0])
    exact = _probe(_PROBE, np)
    with np.errstate(over="ignore"):
        in_float32 = _probe(_PROBE.astype(np.float32), np).astype(np.float64)  # 0 and inf
        float32_range = np.where(np.abs(exact) > np.finfo(np.float32).max, np.inf, exact)  # pairs of float32
        narrowed = exact.astype(np.float32)  # the dtype was not kept
    assert matches_float64(exact)
    assert not matches_float64(in_float32) and not matches_float64(float32_range)
    assert not matches_float64(narrowed)


def test_simulated_devices_are_each_checked_and_compared():
    # XLA reads the flag when JAX starts: the run needs a fresh process.
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4", JAX_PLATFORMS="cpu")
    argv = [sys.executable, "-m", "derivcheck.cli", "verify", "--claim", "sharma2024/eq35-relu-backprop",
            "--all-devices", "--examples", "0", "--jobs", "1", "--format", "json"]
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    payload = json.loads(proc.stdout)
    devices = sorted({r["device"].split()[0] for r in payload["results"]})
    assert devices == ["cpu:0", "cpu:1", "cpu:2", "cpu:3"]
    assert {r["verdict"] for r in payload["results"]} == {"typo confirmed"}
    (f32, f64) = payload["device_comparison"]
    for row in (f32, f64):
        assert row["agree"] and len(row["devices"]) == 4 and row["error_ratio_spread"] == 0


def test_a_device_that_disagrees_fails_the_gate():
    result = derivcheck.verify(LINEAR, dtype="float32", examples=0)
    other = dataclasses.replace(result, device="gpu:0 (simulated)", verdict=derivcheck.Verdict.FAILED,
                                detail="fails at 3 of 384 points")
    (row,) = compare_devices([result, other])
    assert not row["agree"] and row["differing"] == ["gpu:0 (simulated)"]
    table = results_table([result, other], [row])
    assert "DEVICES DISAGREE: sharma2024/eq17-linear-input-gradient [float32]" in table
    assert table.endswith("Gate FAILED.")


@pytest.mark.parametrize(
    ("platform", "precision", "dtype", "unit"),
    [("cpu", jax.lax.Precision.DEFAULT, jnp.float32, 0.0),
     ("gpu", jax.lax.Precision.DEFAULT, jnp.float32, 2.0**-11),
     ("gpu", None, jnp.float32, 2.0**-11),
     ("tpu", (jax.lax.Precision.DEFAULT, jax.lax.Precision.DEFAULT), jnp.float32, 2.0**-8),
     ("tpu", jax.lax.Precision.HIGHEST, jnp.float32, 0.0),
     ("gpu", jax.lax.Precision.DEFAULT, jnp.float64, 0.0)],
)
def test_matmul_operand_rounding_per_platform_and_precision(platform, precision, dtype, unit):
    assert matmul_input_unit(platform, precision, dtype) == unit


def _as_bfloat16(x):
    return np.asarray(jnp.asarray(x, jnp.bfloat16).astype(jnp.float32))


matrices = hnp.arrays(np.float32, (3, 5), elements=st.floats(-8, 8, width=32, allow_subnormal=False))


@given(a=matrices, b=matrices)
def test_reduced_precision_product_stays_within_its_bound(a, b):
    # A TPU at DEFAULT precision rounds float32 operands to bfloat16, then accumulates in
    # float32: simulated here on the CPU, it must stay within the bound charged for it.
    def product(x, y):
        return jax.lax.dot(x, y.T, precision=jax.lax.Precision.DEFAULT)

    _, bound = evaluate_with_bound(product, jnp.asarray(a), jnp.asarray(b), platform="tpu")
    reduced = np.asarray(product(jnp.asarray(_as_bfloat16(a)), jnp.asarray(_as_bfloat16(b))), np.float64)
    exact = a.astype(np.float64) @ b.astype(np.float64).T
    assert np.all(np.abs(reduced - exact) <= np.asarray(bound)), (reduced - exact, bound)


def test_full_precision_bound_does_not_cover_reduced_precision():
    # Why the policy matters: the float32 bound alone is far too small for bfloat16 operands.
    a = np.full((1, 4), 1 + 2.0**-10, np.float32)
    product = jax.jit(lambda x, y: jax.lax.dot(x, y.T, precision=jax.lax.Precision.HIGHEST))
    _, bound = evaluate_with_bound(product, jnp.asarray(a), jnp.asarray(a), platform="cpu")
    reduced = np.asarray(product(jnp.asarray(_as_bfloat16(a)), jnp.asarray(_as_bfloat16(a))), np.float64)
    exact = a.astype(np.float64) @ a.astype(np.float64).T
    assert np.all(np.abs(reduced - exact) > np.asarray(bound))


def test_default_precision_on_the_cpu_is_recorded_and_gives_the_same_verdict():
    highest = derivcheck.verify(LINEAR, dtype="float32", examples=0)
    default = derivcheck.verify(LINEAR, dtype="float32", examples=0, precision="default")
    assert (highest.matmul_precision, default.matmul_precision) == ("highest", "default")
    assert default.verdict == highest.verdict == derivcheck.Verdict.VERIFIED
    assert default.replay.endswith("--precision default") and "--precision" not in highest.replay


def test_seeds_on_one_device_are_not_compared_as_devices():
    # --seeds N: each seed checks other points; only runs of one seed on several devices agree or not.
    one, two = (derivcheck.verify(LINEAR, dtype="float32", examples=0, seed=s) for s in (0, 1))
    assert one.points != two.points or one.max_error_ratio != two.max_error_ratio
    assert compare_devices([one, two]) == []
    (row,) = compare_devices([one, dataclasses.replace(one, device="gpu:0 (simulated)"), two])
    assert row["agree"] and row["seed"] == 0
