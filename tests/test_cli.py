"""The command line as a user runs it: exit codes, one-line errors, JSON and JUnit."""

import dataclasses
import json
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from derivcheck.cli import main

SMALL = ["--claim", "sharma2024/eq3-*", "--examples", "0"]


def test_list_json_has_the_documented_fields(capsys):
    assert main(["list", "--format", "json"]) == 0
    claims = json.loads(capsys.readouterr().out)
    assert claims and {"id", "document", "location", "expected", "reason"} <= set(claims[0])


def test_verify_writes_json_and_junit(tmp_path, capsys):
    junit = tmp_path / "out.xml"
    assert main(["verify", *SMALL, "--format", "json", "--junit", str(junit)]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert {"jax", "platform", "device_kind", "matmul_precision"} <= set(payload["environment"])
    (f32, f64) = payload["results"]
    assert (f32["dtype"], f64["dtype"]) == ("float32", "float64")
    for r in (f32, f64):
        assert r["verdict"] == "verified" and r["passed"] and r["points"] >= 384
    suite = ET.parse(junit).getroot()
    assert suite.get("tests") == "2" and suite.get("failures") == "0"


@pytest.mark.parametrize("claim_id, verdict", [("mnist_notes/mean-cross-entropy", "erratum confirmed"),
                                               ("sharma2024/eq35-relu-backprop", "typo confirmed")])
def test_printed_wrong_is_confirmed_with_its_counterexample(claim_id, verdict, capsys):
    assert main(["verify", "--claim", claim_id, "--dtype", "float64"]) == 0
    out = capsys.readouterr().out
    assert verdict in out and "Gate passed" in out
    assert main(["verify", "--claim", claim_id, "--dtype", "float64", "--format", "json"]) == 0
    (result,) = json.loads(capsys.readouterr().out)["results"]
    ce = result["counterexample"]
    assert result["verdict"] == verdict and ce["abs_error"] > ce["tolerance"]


@pytest.mark.parametrize(
    "argv",
    [["verify", "--dtype", "float8"], ["verify", "--claim", "no/such*"], ["verify", "--document", "999"],
     ["verify", "--examples", "-1"], ["verify", "--seed", "x"], ["verify", "--profile", "quick"],
     ["verify", "--device", "abacus"], ["verify", "--junit", "/no/such/dir/out.xml"], ["frobnicate"],
     ["verify", "--jobs", "0"], ["verify", "--compile-cache", "/proc/derivcheck-cache"],
     ["verify", "--device", "cpu:99"], ["verify", "--precision", "fastest"], ["verify", "--seeds", "0"],
     ["bench", "--sizes", "8"], ["bench", "--sizes", "16,8"], ["bench", "--points", "0"],
     ["verify", "--mesh", "0"], ["verify", "--mesh", "99"], ["verify", "--shard", "4/3"],
     ["verify", "--reference-device", "abacus"], ["verify", "--all-devices", "--mesh", "all"],
     ["merge", "/no/such/run.json"], ["selftest", "--shard", "1/0"]],
)
def test_usage_errors_are_one_line_and_exit_2(argv, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("derivcheck: error:") and "\n" not in err


def test_verify_exits_1_when_a_verdict_is_not_as_expected(monkeypatch, capsys):
    # A catalog claim replaced by a wrong closed form (twice the derivative).
    catalog_module = sys.modules["derivcheck.catalog"]
    original = catalog_module.catalog()

    def doubled(claim):
        return dataclasses.replace(claim, closed_form=lambda x: 2 * claim.closed_form(x))

    monkeypatch.setattr(catalog_module, "catalog", lambda: tuple(
        doubled(c) if c.id.endswith("eq1-sigmoid-derivative") else c for c in original))
    # One process: the replaced claim exists only here, not in a worker's fresh catalog.
    assert main(["verify", "--claim", "*eq1-*", "--dtype", "float64", "--examples", "0", "--jobs", "1"]) == 1
    out = capsys.readouterr().out
    assert "FAILED" in out and "Gate FAILED" in out
    assert "replay: derivcheck verify --claim 'sharma2024/eq1-sigmoid-derivative'" in out


def test_console_script_is_installed():
    proc = subprocess.run([sys.executable, "-m", "derivcheck.cli", "list", "--document", "000"],
                          capture_output=True, text=True, check=True)
    assert "sharma2024/eq46-softmax-backprop-masked" in proc.stdout


def test_worker_processes_give_the_results_of_one_process(capsys):
    argv = ["verify", "--claim", "sharma2024/eq3[45]-relu-backprop*", "--examples", "1", "--format", "json"]
    runs = []
    for jobs in ("1", "2"):
        assert main([*argv, "--jobs", jobs]) == 0
        payload = json.loads(capsys.readouterr().out)
        assert payload["environment"]["jobs"] == int(jobs)
        runs.append([{k: v for k, v in r.items() if k != "elapsed_s"} for r in payload["results"]])
    assert [r["id"] for r in runs[0]] == [r["id"] for r in runs[1]] and len(runs[0]) == 6
    assert runs[0] == runs[1]  # verdicts, points, errors and counterexamples alike


def test_bench_prints_breakdown_throughput_compile_and_scaling_figures(capsys):
    argv = ["bench", "--claim", "sharma2024/eq4[67]-*", "--dtype", "float32", "--batches", "2",
            "--loop-points", "4", "--check-grads-points", "2", "--sizes", "4,8,16", "--format", "json"]
    assert main(argv) == 0
    payload = json.loads(capsys.readouterr().out)
    (total,) = [row for row in payload["throughput_summary"] if row["scope"] == "sharma2024"]
    assert total["runs"] == "2"
    for row in payload["throughput"]:
        assert row["batched_points"] == 256 and row["batched_s"] > 0 and row["batched_compile_s"] > 0
        assert row["loop_points"] == 4 and row["loop_s"] > 0
        assert row["check_grads_points"] == 2 and row["check_grads_s"] > 0
    assert payload["compile"]["compile"]["count"] > 0
    # The cold breakdown: every run's parts add up to its wall time, and the first compiles.
    runs = [(r["id"], r["dtype"]) for r in payload["breakdown"]]
    assert runs == [(t["id"], t["dtype"]) for t in payload["throughput"]]
    for row in payload["breakdown"]:
        assert sum(row["seconds"].values()) == pytest.approx(row["wall_s"], rel=1e-9)
    assert payload["breakdown"][0]["compiles"] > 0 and payload["breakdown_totals"]["compile"] > 0
    assert set(payload["start_up"]) == {"interpreter", "import jax", "import derivcheck + catalogs"}
    (scaled,) = payload["scaling"]  # the one scaling case among the chosen claims
    assert scaled["id"] == "sharma2024/eq46-softmax-backprop-masked" and scaled["sizes"] == [4, 8, 16]
    assert all(t > 0 for t in scaled["closed_form_s"] + scaled["autodiff_s"])


def test_compile_cache_is_written_and_reused(tmp_path):
    cache = tmp_path / "cache"
    argv = [sys.executable, "-m", "derivcheck.cli", "verify", *SMALL, "--jobs", "1", "--format", "json",
            "--compile-cache", str(cache)]
    first = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=600)
    entries = sorted(p.name for p in cache.iterdir())
    assert entries, "nothing was cached"
    assert not [n for n in entries if n.startswith(".partial-")], "an entry was left half-written"
    stages = sorted(p.name for p in (cache / "derivcheck-stages").rglob("*.stage"))
    assert stages, "no checker stage was stored"
    second = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=600)
    assert sorted(p.name for p in cache.iterdir()) == entries  # loaded, not compiled again
    assert sorted(p.name for p in (cache / "derivcheck-stages").rglob("*.stage")) == stages

    def results(proc):
        return [{k: v for k, v in r.items() if k != "elapsed_s"} for r in json.loads(proc.stdout)["results"]]

    assert results(first) == results(second)  # verdicts, points, errors, counterexamples


def test_ctrl_c_leaves_no_half_written_output(tmp_path):
    import os
    import signal
    import time

    junit = tmp_path / "out.xml"
    # A shell's background job (`pytest &`) starts with SIGINT ignored, and a child inherits
    # that: the command is run as a terminal would run it, with Ctrl-C raising KeyboardInterrupt.
    run_as_in_a_terminal = ("import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
                            "from derivcheck.cli import main; sys.exit(main(sys.argv[1:]))")
    argv = [sys.executable, "-c", run_as_in_a_terminal, "verify", "--document", "000", "--format", "json",
            "--junit", str(junit), "--jobs", "2"]
    env = dict(os.environ, CI="1")  # one progress line per result
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True)
    deadline = time.monotonic() + 300
    first = proc.stderr.readline()  # the first result is done: workers are busy with the rest
    assert first.startswith("[1/"), first
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C reaches the whole process group
    out, err = proc.communicate(timeout=max(deadline - time.monotonic(), 1))
    assert proc.returncode == 130, err[-2000:]
    assert err.strip().endswith("derivcheck: interrupted; nothing was written")
    assert out == "" and list(tmp_path.iterdir()) == []


def _processes_of_session(session: int) -> list[int]:
    import os

    found = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[3]) == session and fields[0] != "Z":  # field 6 of stat: the session id
            found.append(int(entry))
    return found


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads the process table from /proc")
def test_sigterm_stops_the_workers_and_writes_nothing(tmp_path):
    import os
    import signal
    import time

    # A CI job's timeout sends SIGTERM to derivcheck alone: its workers must not compute on.
    junit = tmp_path / "out.xml"
    argv = [sys.executable, "-m", "derivcheck.cli", "verify", "--document", "000", "--junit", str(junit),
            "--jobs", "2"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, CI="1"), start_new_session=True)
    first = proc.stderr.readline()  # the first result is done: workers are busy with the rest
    assert first.startswith("[1/"), first
    assert len(_processes_of_session(proc.pid)) > 2  # derivcheck, its workers, their tracker
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, err[-2000:]
    assert err.strip().endswith("derivcheck: terminated; nothing was written")
    deadline = time.monotonic() + 30
    while _processes_of_session(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _processes_of_session(proc.pid) == []
    assert out == "" and list(tmp_path.iterdir()) == []


def test_several_seeds_each_give_a_full_result(capsys):
    assert main(["verify", *SMALL, "--dtype", "float32", "--seed", "5", "--seeds", "3", "--format", "json",
                 "--jobs", "1"]) == 0
    results = json.loads(capsys.readouterr().out)["results"]
    assert [r["seed"] for r in results] == [5, 6, 7]
    assert all(r["verdict"] == "verified" and f"--seed {r['seed']} " in r["replay"] for r in results)
    # Different seeds draw different points: the worst errors differ.
    assert len({r["max_abs_error"] for r in results}) > 1 or all(r["max_abs_error"] == 0 for r in results)
