"""A run split over CI jobs (--shard K/N) and merged back: the same verdicts as one run."""

import contextlib
import io
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from derivcheck._shards import parse_shard, partition
from derivcheck.cli import main
from derivcheck.errors import InvalidArgument

# Six claims (a typo among them) in two dtypes: 12 units over 3 shards.
SELECTION = ["--claim", "sharma2024/eq3*", "--examples", "0", "--jobs", "1"]
_TIMING = ("elapsed_s",)


def _run(argv, capsys) -> tuple[int, str]:
    code = main(argv)
    return code, capsys.readouterr().out


def _results(payload: dict) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in _TIMING} for r in payload["results"]]


@pytest.fixture(scope="module")
def shard_files(tmp_path_factory):
    """The whole run and its three shards, as JSON files."""
    out = tmp_path_factory.mktemp("shards")
    files = {}
    for name, extra in (("whole", []), *((f"s{k}", ["--shard", f"{k}/3"]) for k in (1, 2, 3))):
        buffer = io.StringIO()
        with contextlib.redirect_stdout(buffer):
            assert main(["verify", *SELECTION, *extra, "--format", "json"]) == 0
        files[name] = out / f"{name}.json"
        files[name].write_text(buffer.getvalue())
    return files


def test_merged_shards_equal_one_run(shard_files, tmp_path, capsys):
    parts = [json.loads(shard_files[f"s{k}"].read_text()) for k in (1, 2, 3)]
    assert all(p["results"] for p in parts)  # every shard had work
    assert sum(len(p["results"]) for p in parts) == 12
    junit = tmp_path / "merged.xml"
    code, out = _run(["merge", *(str(shard_files[f"s{k}"]) for k in (3, 1, 2)), "--format", "json",
                      "--junit", str(junit)], capsys)
    assert code == 0
    merged, whole = json.loads(out), json.loads(shard_files["whole"].read_text())
    assert _results(merged) == _results(whole)  # in the run's order, whatever order the files came in
    assert {r["verdict"] for r in merged["results"]} == {"verified", "typo confirmed"}
    assert merged["environment"]["merged_shards"] == 3 and "shard" not in merged["environment"]
    assert 'tests="12"' in junit.read_text()
    (tmp_path / "merged.json").write_text(out)
    code, out = _run(["report", "--from", str(tmp_path / "merged.json"), "--out", str(tmp_path / "reports")], capsys)
    assert code == 0 and "12 results" in out


def _edited(path, tmp_path, name, edit) -> str:
    data = json.loads(path.read_text())
    edit(data)
    target = tmp_path / name
    target.write_text(json.dumps(data))
    return str(target)


def _other_seed(data):
    data["environment"]["seed"] = 1


def _other_version(data):
    data["environment"]["jax"] = "0.0.1"


def _other_profile(data):
    data["environment"]["profile"] = "thorough"


def _overlapping(data):
    data["environment"]["shard"]["index"] = 3


@pytest.mark.parametrize(("files", "edit", "message"), [
    (("s1", "s2"), None, "shard 3/3 is missing"),
    (("s1", "s2", "s2", "s3"), None, "shard 2/3 is given twice"),
    (("s1", "s2", "whole"), None, "not the output of a shard"),
    (("s1", "s2", "s3"), _other_seed, "seed 1 differs"),
    (("s1", "s2", "s3"), _other_version, "jax '0.0.1' differs"),
    (("s1", "s2", "s3"), _other_profile, "profile 'thorough' differs"),
    (("s1", "s2", "s2"), _overlapping, "the shards overlap"),
])
def test_merge_refuses_what_is_not_one_run_in_one_line(shard_files, tmp_path, capsys, files, edit, message):
    paths = [str(shard_files[f]) for f in files]
    if edit is not None:  # the last file edited: another run's shard, or a copy relabelled
        paths[-1] = _edited(shard_files[files[-1]], tmp_path, "edited.json", edit)
    assert main(["merge", *paths]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("derivcheck: error:") and message in err and "\n" not in err


def test_a_report_shard_writes_its_part_for_merge(tmp_path, capsys):
    code, out = _run(["report", *SELECTION, "--shard", "2/3", "--out", str(tmp_path)], capsys)
    part = tmp_path / "run-2-of-3.json"
    assert code == 0 and str(part) in out and not (tmp_path / "index.html").exists()
    assert json.loads(part.read_text())["environment"]["shard"]["index"] == 2


def test_selftest_shards_merge_into_the_whole_selftest(tmp_path, capsys):
    argv = ["selftest", "--claim", "sharma2024/eq3-relu-derivative", "--operator", "sign flip", "--jobs", "1",
            "--format", "json"]
    code, whole = _run(argv, capsys)
    assert code == 0
    for k in (1, 2):
        code, out = _run([*argv, "--shard", f"{k}/2"], capsys)
        assert code == 0
        (tmp_path / f"{k}.json").write_text(out)
    code, out = _run(["merge", str(tmp_path / "1.json"), str(tmp_path / "2.json"), "--format", "json"], capsys)
    assert code == 0
    assert json.loads(out)["mutants"] == json.loads(whole)["mutants"] and json.loads(out)["mutants"]


units = st.lists(st.tuples(st.sampled_from(["a", "b", "c", "d", "e"]), st.sampled_from(["float32", "float64"]),
                           st.integers(0, 3)), unique=True, max_size=30)


@given(units=units, count=st.integers(1, 6), data=st.data())
def test_the_partition_covers_every_unit_once_and_is_balanced(units, count, data):
    costs = {u: data.draw(st.floats(0.01, 10.0), label=str(u)) for u in units}
    shares = partition(units, costs, count)
    assert shares == partition(list(units), dict(costs), count)  # deterministic
    assert sorted(u for share in shares for u in share) == sorted(units)
    for share in shares:  # each in the run's order
        assert share == [u for u in units if u in share]
    loads = [sum(costs[u] for u in share) for share in shares]
    # Largest first to the least loaded: no share exceeds another by more than one unit.
    assert max(loads) - min(loads) <= max(costs.values(), default=0.0) + 1e-9


@pytest.mark.parametrize("text", ["0/3", "4/3", "3", "a/b", "1/0", "-1/2"])
def test_a_bad_shard_is_refused(text):
    with pytest.raises(InvalidArgument, match="expected a shard K/N"):
        parse_shard(text)
