"""A user's own document: declared in their own file, run through the same commands.

The README's example document is written to an empty directory outside the repository and
run there through the command line, as a user runs it; bad catalogs are refused in one line.
"""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from derivcheck.catalog import use
from derivcheck.cli import main

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.fixture(autouse=True)
def _bundled_catalog_afterwards():
    yield
    use(None)  # main() with --catalog switched this process's catalogs


def _readme_document() -> str:
    text = README.read_text()
    start = text.index("## Checking your own document\n")
    section = text[start:text.find("\n## ", start + 1)]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)[0]


def _run(*argv: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "derivcheck.cli", *argv], cwd=cwd, capture_output=True, text=True)


def test_the_readme_document_is_listed_verified_and_reported_from_an_empty_directory(tmp_path):
    (tmp_path / "my_notes.py").write_text(_readme_document())
    listed = _run("list", "--catalog", "my_notes.py", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert "mynotes/eq2-softplus-derivative" in listed.stdout and "sharma2024" not in listed.stdout
    # Two worker processes: each loads the catalog from the file and finds the claims by id.
    verified = _run("verify", "--catalog", "my_notes.py", "--examples", "0", "--jobs", "2", cwd=tmp_path)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert re.search(r"mynotes/eq2-softplus-derivative\s+float32\s+holds\s+verified", verified.stdout)
    assert re.search(r"mynotes/eq3-softplus-derivative-restated\s+float64\s+erratum\s+erratum confirmed",
                     verified.stdout)
    reported = _run("report", "--catalog", "my_notes.py", "--examples", "0", "--jobs", "1", "--out", "site",
                    cwd=tmp_path)
    assert reported.returncode == 0, reported.stderr
    page = (tmp_path / "site" / "mynotes.html").read_text()
    assert "eq3-softplus-derivative-restated" in page and "Softplus notes" in page
    assert (tmp_path / "site" / "mynotes.md").is_file() and (tmp_path / "site" / "index.html").is_file()


def test_a_failing_claim_of_a_user_catalog_replays_with_its_catalog(tmp_path, capsys):
    notes = tmp_path / "my_notes.py"
    notes.write_text(_readme_document().replace("return 1 / (1 + jnp.exp(-x))", "return 2 / (1 + jnp.exp(-x))"))
    assert main(["verify", "--catalog", str(notes), "--claim", "*eq2-*", "--dtype", "float64",
                 "--examples", "0", "--jobs", "1"]) == 1
    out = capsys.readouterr().out
    assert f"replay: derivcheck verify --catalog '{notes}' --claim 'mynotes/eq2-softplus-derivative'" in out


_DOCUMENT = 'import derivcheck\nDOCUMENT = derivcheck.Document(key="k", seed="k.md", title="t", author="a")\n'
_CLAIM = ('derivcheck.Claim(id={id!r}, document=DOCUMENT, location="1", statement="x", closed_form=abs, '
          'reference=abs, domain=derivcheck.Domain((derivcheck.Arg("x"),)), checked_against="abs"{extra})')


def _claims(*specs: tuple[str, str]) -> str:
    return _DOCUMENT + "CLAIMS = [" + ", ".join(_CLAIM.format(id=i, extra=e) for i, e in specs) + "]\n"


@pytest.mark.parametrize(
    ("text", "complaint"),
    [(None, "no such file"),
     ("def broken(:\n", "does not import: SyntaxError"),
     ("import no_such_module_anywhere\n", "does not import: ModuleNotFoundError: No module named"),
     ("X = 1\n", "declares no document"),
     (_DOCUMENT, "declares no claims"),
     (_DOCUMENT + "CLAIMS = [1]\n", "CLAIMS holds a int"),
     (_claims(("k/a", ""), ("k/a", "")), "claim id k/a is declared twice"),
     (_claims(("k/a", ', corrects="k/zz"')), "claim k/a corrects 'k/zz', which names no claim"),
     (_claims(("sharma2024/eq1-sigmoid-derivative", "")), "claim id sharma2024/eq1-sigmoid-derivative is already "
                                                           "declared by derivcheck.catalog.sharma2024")],
)
def test_a_bad_catalog_is_refused_in_one_line_naming_it(tmp_path, capsys, text, complaint):
    path = tmp_path / "bad_notes.py"
    if text is not None:
        path.write_text(text)
    argv = ["list", *(["--catalog", "derivcheck.catalog.sharma2024"] if "already" in complaint else []),
            "--catalog", str(path)]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith(f"derivcheck: error: catalog {path}") and complaint in err, err


def test_an_unknown_catalog_module_is_refused(capsys):
    assert main(["verify", "--catalog", "no_such_package.notes"]) == 2
    assert "catalog no_such_package.notes: does not import: ModuleNotFoundError" in capsys.readouterr().err


def test_installed_packages_register_catalogs_through_an_entry_point(tmp_path, monkeypatch, capsys):
    import importlib.metadata

    (tmp_path / "registered_notes.py").write_text(_readme_document())
    monkeypatch.syspath_prepend(str(tmp_path))
    point = importlib.metadata.EntryPoint("notes", "registered_notes", "derivcheck.catalogs")
    monkeypatch.setattr(importlib.metadata, "entry_points",
                        lambda group: [point] if group == "derivcheck.catalogs" else [])
    assert main(["list", "--all-catalogs", "--format", "json"]) == 0
    ids = {c["id"] for c in json.loads(capsys.readouterr().out)}
    assert {"mynotes/eq2-softplus-derivative", "sharma2024/eq1-sigmoid-derivative"} <= ids


def test_one_line_in_a_test_file_turns_a_catalog_into_tests(tmp_path):
    (tmp_path / "my_notes.py").write_text(_readme_document().replace(
        "return 1 / (1 + jnp.exp(-x))", "return 2 / (1 + jnp.exp(-x))"))  # eq. (2) now wrong
    (tmp_path / "test_notes.py").write_text(
        "import derivcheck.testing\n\ntest_my_notes = derivcheck.testing.catalog_tests('my_notes.py')\n")
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_notes.py"],
                         cwd=tmp_path, capture_output=True, text=True)
    assert run.returncode == 1, run.stdout
    assert "2 failed, 2 passed" in run.stdout
    assert "test_notes.py::test_my_notes[mynotes/eq2-softplus-derivative-float32]" in run.stdout
    assert "replay: derivcheck verify --catalog 'my_notes.py' --claim 'mynotes/eq2-softplus-derivative'" in run.stdout


_DEPENDENT = {
    "autodiff in the closed form": ("import jax", "def eq2(x):", "    return jax.vmap(jax.grad(softplus))(x)"),
    "autodiff imported by name": ("from jax import grad, vmap", "def eq2(x):", "    return vmap(grad(softplus))(x)"),
    "autodiff in a helper": ("import jax", "def eq2(x):", "    return helper(x)\n\n\ndef helper(x):\n"
                             "    return jax.vmap(jax.grad(softplus))(x)"),
    "the reference itself": ("", "def eq2(x):", "    return TRUTH(x)"),
}


@pytest.mark.parametrize("case", sorted(_DEPENDENT))
def test_a_closed_form_computed_by_its_truth_is_refused(tmp_path, capsys, case):
    imports, header, body = _DEPENDENT[case]
    text = _readme_document()
    start = text.index("def eq2(x):")
    end = text.index("def eq3(x):")
    text = imports + "\n" + text[:start] + header + "\n" + body + "\n\n\n" + text[end:]
    path = tmp_path / "notes.py"
    path.write_text(text)
    assert main(["verify", "--catalog", str(path), "--examples", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and f"catalog {path}: claim mynotes/eq2-softplus-derivative:" in err, err
    assert ("uses its own reference" if case == "the reference itself" else "calls autodiff") in err


def test_the_bundled_closed_forms_are_independent_of_their_truth():
    from derivcheck.catalog import catalog
    from derivcheck.independence import problems_of

    assert problems_of(catalog()) == []


def test_a_numpy_closed_form_in_a_catalog_is_verified_and_its_faults_are_killed(tmp_path, capsys):
    notes = tmp_path / "numpy_notes.py"
    notes.write_text("import numpy as np\n" + _readme_document().replace(
        "return 1 / (1 + jnp.exp(-x))", "return 1 / (1 + np.exp(-x))"))  # eq. (2) in NumPy, run on the host
    assert main(["verify", "--catalog", str(notes), "--claim", "*eq2-*", "--examples", "0", "--jobs", "1"]) == 0
    assert "verified" in capsys.readouterr().out
    assert main(["selftest", "--catalog", str(notes), "--format", "json", "--jobs", "1"]) == 0
    records = json.loads(capsys.readouterr().out)["mutants"]
    host = {r["operator"] for r in records}
    assert {"host: sign flip", "host: factor of 2"} <= host and all(op.startswith("host: ") for op in host)
    assert all(r["status"] in ("killed", "equivalent") for r in records)
