"""DESIGN.md principle 1: the claims and the truth are two independent paths."""

import ast
from pathlib import Path

import pytest

from derivcheck.independence import AUTODIFF

ROOT = Path(__file__).resolve().parents[1]


def _python_files(package: str) -> list[Path]:
    files = sorted((ROOT / package).rglob("*.py"))
    assert files, f"no sources found under {package}/"
    return files


def _imports(tree: ast.AST) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names |= {f"{node.module}.{a.name}" for a in node.names}
    return names


def _autodiff_uses(tree: ast.AST) -> set[str]:
    used = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in AUTODIFF:
            used.add(node.attr)
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("jax"):
            used |= {a.name for a in node.names if a.name in AUTODIFF}
    return used


@pytest.mark.parametrize("path", _python_files("derivations"), ids=lambda p: p.name)
def test_derivations_use_no_autodiff_and_no_reference(path):
    tree = ast.parse(path.read_text())
    assert not _autodiff_uses(tree), f"{path.name} calls autodiff: {_autodiff_uses(tree)}"
    assert not {m for m in _imports(tree) if m.split(".")[0] in ("reference", "derivcheck")}


@pytest.mark.parametrize("path", _python_files("reference"), ids=lambda p: p.name)
def test_reference_does_not_import_derivations(path):
    imports = _imports(ast.parse(path.read_text()))
    assert not {m for m in imports if m.split(".")[0] == "derivations"}


def test_the_checks_themselves_can_fail():
    bad = ast.parse("import jax\nfrom reference import forward\ng = jax.grad(f)\n")
    assert _autodiff_uses(bad) == {"grad"}
    assert "reference" in _imports(bad)
