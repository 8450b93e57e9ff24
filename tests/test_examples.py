"""The worked examples in ``examples/``, run as a user runs them: copied to an empty directory
outside the repository and given to the command line, their verdicts those the README lists."""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = {"batchnorm.py": "ioffe2015", "attention.py": "dao2022"}


def _readme_verdicts(key: str) -> dict[tuple[str, str], str]:
    text = (ROOT / "README.md").read_text()
    start = text.index("## Worked examples")
    section = text[start:text.index("\n## ", start + 1)]
    rows = re.findall(r"^\| `([^`]+)` \| [^|]+ \| ([^|]+) \| ([^|]+) \|$", section, flags=re.M)
    return {(claim, dtype): verdict.strip() for claim, *verdicts in rows if claim.startswith(f"{key}/")
            for dtype, verdict in zip(("float32", "float64"), verdicts, strict=True)}


def _derivcheck(*argv: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "derivcheck.cli", *argv], cwd=cwd, capture_output=True, text=True)


@pytest.mark.parametrize("example", sorted(EXAMPLES))
def test_a_worked_example_gives_the_readme_verdicts_and_its_report_from_a_copy_outside_the_repository(
        example, tmp_path):
    key = EXAMPLES[example]
    shutil.copy(ROOT / "examples" / example, tmp_path / example)
    run = _derivcheck("verify", "--catalog", example, "--format", "json", "--jobs", "1", cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    results = json.loads(run.stdout)["results"]
    expected = _readme_verdicts(key)
    assert expected, f"README lists no verdicts for {key}"
    assert {(r["id"], r["dtype"]): r["verdict"] for r in results} == expected
    assert all(r["points"] > 0 for r in results)
    (tmp_path / "run.json").write_text(run.stdout)
    report = _derivcheck("report", "--catalog", example, "--from", "run.json", "--out", "site", cwd=tmp_path)
    assert report.returncode == 0, report.stderr[-2000:]
    page = (tmp_path / "site" / f"{key}.html").read_text()
    document = json.loads(_derivcheck("list", "--catalog", example, "--format", "json", cwd=tmp_path).stdout)[0]
    assert document["url"] in page and document["citation"] in page
    assert (tmp_path / "site" / f"{key}.md").is_file() and (tmp_path / "site" / "index.html").is_file()
