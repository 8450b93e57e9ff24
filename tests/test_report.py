"""Derivation reports: the committed reports/ are what the code writes from their run, the
Markdown renders its tables and math, the HTML renders every equation as MathML in headless
Chromium without a request leaving the machine, and a regenerated report has the same verdicts."""

from __future__ import annotations

import dataclasses
import re
import shutil
from pathlib import Path

import pytest

import derivcheck
from derivcheck._report import load_run, write_reports
from derivcheck.cli import main

ROOT = Path(__file__).resolve().parents[1]
REPORTS = ROOT / "reports"
ARTIFACTS = ROOT / "test-artifacts"
CLAIMS = derivcheck.catalog()
DOCUMENT_KEYS = sorted({c.document.key for c in CLAIMS})
REGENERATE_COMMAND = ".venv/bin/derivcheck report"


def _statements_on_page(key: str, differences: bool = True) -> int:
    """Equations a document page shows: every claim's, plus each correction shown again
    under the erratum it corrects, plus (in HTML, as MathML) each exact difference of a
    disproof in the run."""
    claims = [c for c in CLAIMS if c.document.key == key]
    if not differences:
        return len(claims) + sum(1 for c in claims if c.corrects)
    _, results = load_run(REPORTS / "run.json")
    proofs = {r.id: r.proof for r in results if r.proof is not None}
    differences = sum(len(proofs[c.id]["difference"]) for c in claims
                      if c.id in proofs and proofs[c.id]["verdict"] == "disproved")
    return len(claims) + sum(1 for c in claims if c.corrects) + differences


def test_readme_names_the_command_that_regenerates_the_reports():
    assert f"`{REGENERATE_COMMAND}`" in (ROOT / "README.md").read_text(encoding="utf-8")


def test_committed_reports_are_what_the_code_writes_from_their_run(tmp_path):
    env, results = load_run(REPORTS / "run.json")
    assert {r.id for r in results} == {c.id for c in CLAIMS}, "regenerate: " + REGENERATE_COMMAND
    written = write_reports(results, env, CLAIMS, tmp_path)
    assert {p.name for p in written} >= {"index.html", "index.md", "run.json"}
    for key in DOCUMENT_KEYS:
        for name in (f"{key}.md", f"{key}.html", f"figures/{key}.svg"):
            assert (REPORTS / name).is_file(), name
        # Markdown is ours alone (no third-party renderer in it): it must match byte for byte.
        assert (tmp_path / f"{key}.md").read_text() == (REPORTS / f"{key}.md").read_text(), \
            f"reports/{key}.md is stale; regenerate: {REGENERATE_COMMAND}"


def _markdown():
    from markdown_it import MarkdownIt
    from mdit_py_plugins.dollarmath import dollarmath_plugin

    return MarkdownIt("commonmark").enable("table").use(dollarmath_plugin)


@pytest.mark.parametrize("key", DOCUMENT_KEYS)
def test_markdown_renders_tables_and_math(key):
    from latex2mathml.converter import convert

    rendered = _markdown().render((REPORTS / f"{key}.md").read_text(encoding="utf-8"))
    blocks = re.findall(r'<div class="math block">\n(.*?)\n</div>', rendered, flags=re.S)
    assert len(blocks) == _statements_on_page(key, differences=False)  # differences are text in Markdown
    for latex in blocks:
        assert "<math" in convert(latex)
    checked = sum(1 for c in CLAIMS if c.document.key == key)
    assert rendered.count("<table>") == 1 + checked  # the summary, and one per claim
    assert '<img src="figures/' in rendered


def test_erratum_sections_show_counterexample_and_the_corrections_verdict():
    errata = [c for c in CLAIMS if c.printed_wrong]
    corrected = {c.corrects: c for c in CLAIMS if c.corrects}
    assert errata
    for erratum in errata:
        text = (REPORTS / f"{erratum.document.key}.md").read_text(encoding="utf-8")
        section = text.split(f"`{erratum.id}`\n", 1)[1].split("\n### ", 1)[0]
        assert "Counterexample (float32):" in section and "Counterexample (float64):" in section
        assert "|error|" in section and "> tolerance" in section
        assert f"**Corrected formula** (`{corrected[erratum.id].id}`), float32: verified, float64: verified" \
            in section, erratum.id


def test_regenerating_a_document_gives_the_same_verdicts(tmp_path, capsys):
    key = "sharma2024"
    assert main(["report", "--document", key, "--out", str(tmp_path), "--jobs", "1"]) == 0
    _, fresh = load_run(tmp_path / "run.json")
    _, committed = load_run(REPORTS / "run.json")

    def verdicts(results):
        return {(r.id, r.dtype): (r.verdict, r.points) for r in results if r.id.startswith(key + "/")}

    assert verdicts(fresh) == verdicts(committed)
    # The committed run carries exact verdicts (report --prove); without them, its page is the fresh one.
    plain = tmp_path / "plain"
    env, _ = load_run(REPORTS / "run.json")
    write_reports([dataclasses.replace(r, proof=None) for r in committed], env, CLAIMS, plain)
    assert (tmp_path / f"{key}.md").read_text() == (plain / f"{key}.md").read_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--from", "missing.json"], "--from missing.json: no such file"),
        (["--from", "README.md"], "--from README.md: not a JSON file"),
        (["--from", "pyproject.toml", "--seed", "3"], "--from reads a saved run; --seed would need a new one"),
        (["--out", "README.md"], "--out README.md: exists and is not a directory"),
    ],
)
def test_report_usage_errors_are_one_line(args, message, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    assert main(["report", *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.skip("Chromium is not installed (Debian package 'chromium', which .ci/run installs as root): "
                    "the HTML reports were not opened in a browser")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.skip("playwright is not installed (pip install -e '.[test]'): the HTML reports were not opened")
    return path


# Flags for Chromium on a closed network, from the machine notes: without the background
# networking ones it tries to reach Google's hosts at every start.
_CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
                  "--disable-background-networking", "--disable-component-update"]

_MATH_STATE = """() => {
  const all = [...document.querySelectorAll('math')];
  const rendered = all.filter(m => m instanceof MathMLElement
      && m.getBoundingClientRect().width > 0 && m.getBoundingClientRect().height > 0);
  return {math: all.length, rendered: rendered.length, errors: document.querySelectorAll('merror').length};
}"""


def test_html_reports_render_every_equation_offline_in_chromium():
    from playwright.sync_api import sync_playwright

    executable = _chromium()
    ARTIFACTS.mkdir(exist_ok=True)
    pages = {"index": 0, **{key: _statements_on_page(key) for key in DOCUMENT_KEYS}}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=_CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            requests: list[str] = []

            def only_local(route):
                requests.append(route.request.url)
                if route.request.url.split(":", 1)[0] in ("file", "data"):
                    route.continue_()
                else:
                    route.abort()

            page.route("**/*", only_local)
            for name, equations in pages.items():
                page.goto((REPORTS / f"{name}.html").as_uri())
                state = page.evaluate(_MATH_STATE)
                assert state == {"math": equations, "rendered": equations, "errors": 0}, name
                if name in ("index", "sharma2024"):
                    page.screenshot(path=str(ARTIFACTS / f"report-{name}.png"), full_page=name == "index")
        finally:
            browser.close()
    left = [url for url in requests if url.split(":", 1)[0] not in ("file", "data")]
    assert not left, f"requests left the machine: {left[:3]}"
    assert len(requests) >= len(pages)  # the pages themselves were seen, so the check is live
