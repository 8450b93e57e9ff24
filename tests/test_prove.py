"""Exact verdicts (derivcheck._prove, derivcheck._symbolic): the translation, the bundled
claims that must be proved or disproved, and proofs that are not vacuous."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import sympy

import derivcheck
from derivcheck import _symbolic
from derivcheck._prove import expected_proof, prove_claim, prove_closed_form, sizes_to_prove
from derivcheck._selftest import mutants_of
from derivcheck.catalog import catalog
from derivcheck.claims import Arg, Domain
from derivcheck.cli import main

_CLAIMS = {c.id: c for c in catalog()}
REPORTS = Path(__file__).resolve().parents[1] / "reports"
_X = sympy.Symbol("x", real=True)

#: Elementwise functions and the expression their jaxpr must translate to.
TRANSLATIONS = [
    (jax.nn.sigmoid, 1 / (1 + sympy.exp(-_X))),
    (jnp.tanh, sympy.tanh(_X)),
    (jnp.log1p, sympy.log(1 + _X)),
    (jnp.expm1, sympy.exp(_X) - 1),
    (lambda x: x**3, _X**3),
    (lambda x: jnp.sqrt(x * x + 1.0), sympy.sqrt(_X**2 + 1)),
    (lambda x: jax.lax.rsqrt(x * x + 1.0), 1 / sympy.sqrt(_X**2 + 1)),
    (lambda x: 0.1 * x, sympy.Rational(0.1) * _X),  # the float constant exactly as it is
]


def _translated(fn, sign=None):
    closed = jax.make_jaxpr(fn)(jax.ShapeDtypeStruct((), jnp.float64))
    paths = _symbolic.Paths({_X: sign} if sign else {})
    (out,) = _symbolic.evaluate(closed.jaxpr, closed.consts, [np.array(_X, dtype=object)], paths)
    return out.item()


@pytest.mark.parametrize(("fn", "expected"), TRANSLATIONS, ids=[str(e) for _, e in TRANSLATIONS])
def test_elementwise_translation(fn, expected):
    with jax.enable_x64(True):
        assert sympy.simplify(_translated(fn) - expected) == 0


def test_a_kink_is_a_branch_and_each_side_is_exact():
    with jax.enable_x64(True):
        with pytest.raises(_symbolic.Decide) as need:
            _translated(jax.nn.relu)
        assert need.value.key == _X
        assert _translated(jax.nn.relu, sign=1) == _X
        assert _translated(jax.nn.relu, sign=-1) == 0
        assert _translated(jnp.abs, sign=-1) == -_X


def test_an_unknown_primitive_is_not_attempted():
    domain = Domain((Arg("x", ("n",)),), dims=(("n", (2,)),))
    proof = prove_closed_form(lambda x: jax.lax.cumprod(x), lambda x: jax.lax.cumprod(x), domain)
    assert proof.verdict == "not attempted"
    assert "cumprod" in proof.why


def test_sizes_every_dimension_up_to_three():
    domain = _CLAIMS["sharma2024/eq17-linear-input-gradient"].domain
    assert sizes_to_prove(domain) == sorted(
        ({"m": m, "n": n} for m in (1, 2, 3) for n in (1, 2, 3)), key=lambda s: (s["m"] + s["n"], s["m"], s["n"]))
    # A dimension drawn from 2 on is proved from 2 on.
    low = _CLAIMS["dey/summary-step4-weight-gradient"].domain
    assert min(s["n0"] for s in sizes_to_prove(low)) == 2


#: Claims the issue names, by kind: each must be decided as its kind expects.
DECIDED = [
    "sharma2024/eq1-sigmoid-derivative", "sharma2024/eq2-tanh-derivative", "sharma2024/eq3-relu-derivative",
    "sharma2024/eq4-silu-derivative-factored", "sharma2024/eq34-relu-backprop-elementwise",
    "sharma2024/eq39-silu-backprop", "vijay2019/sec1.1-softsign-first-derivative-negative",
    "vijay2019/sec1.1-softsign-second-derivative-nonnegative", "sharma2024/eq9-softmax-jacobian-matrix",
    "sharma2024/eq44-softmax-backprop", "challa2022/eq5-softmax-derivative", "dey/eq18-softmax-jacobian",
    "mnist_notes/softmax-derivative-offdiagonal", "challa2022/eq17-last-layer-delta",
    # printed wrong
    "sharma2024/eq35-relu-backprop", "challa2022/eq11-loss-output-derivative", "mnist_notes/chain-rule-path-sum",
    "mnist_notes/mean-cross-entropy", "vijay2019/sec2.2-linear-weight-gradient-squared",
    "challa2022/overflow-fix-scaled-input",
]


@pytest.mark.parametrize("claim_id", DECIDED)
def test_bundled_claim_is_decided_as_its_kind_expects(claim_id):
    claim = _CLAIMS[claim_id]
    proof = prove_claim(claim)
    assert proof.verdict == expected_proof(claim), proof.summary()
    if proof.verdict == "proved" and claim.domain.dims:
        assert {s[d] for s in proof.sizes for d, _ in claim.domain.dims} >= {3}, proof.summary()
    if proof.verdict == "disproved":
        assert proof.difference and proof.numeric["difference"] != 0
        assert "<m" in proof.difference[0]["mathml"]
    if claim.outside is not None:
        assert proof.outside.verdict == "disproved", proof.summary()


def test_sharma_35_differs_by_the_upstream_gradient_where_x_is_negative():
    proof = prove_claim(_CLAIMS["sharma2024/eq35-relu-backprop"])
    assert proof.sizes == ({"n": 1},)
    assert proof.condition == "X_1 < 0"
    assert [d["difference"] for d in proof.difference] == ["dE_dY_1"]
    x, g = (sympy.Rational(proof.counterexample[k][0][0]) for k in ("X", "dE_dY"))
    assert x < 0 and proof.numeric["exact_difference"] == float(g)


#: Claims whose proof is tested not to be vacuous, at one size.
PROVED_AT_TWO = ["sharma2024/eq1-sigmoid-derivative", "sharma2024/eq9-softmax-jacobian-matrix",
                 "sharma2024/eq3-relu-derivative", "vijay2019/sec1.1-softsign-second-derivative-negative"]


@pytest.mark.parametrize("claim_id", PROVED_AT_TWO)
def test_mutants_of_a_proved_claim_are_disproved(claim_id):
    claim = _CLAIMS[claim_id]
    domain = dataclasses.replace(claim.domain, dims=tuple((d, (2,)) for d, _ in claim.domain.dims))
    assert prove_closed_form(claim.closed_form, claim.reference, domain).verdict == "proved"
    symmetric = {name for name, _ in claim.symmetries}
    mutants = mutants_of(dataclasses.replace(claim, domain=domain))
    assert mutants
    for name, mutant in mutants:
        proof = prove_closed_form(mutant.closed_form, claim.reference, domain)
        assert proof.verdict == ("proved" if name in symmetric else "disproved"), f"{name}: {proof.summary()}"


def test_check_can_ask_for_a_proof():
    def sigmoid_derivative(x):
        s = jax.nn.sigmoid(x)
        return s * (1 - s)

    def wrong(x):
        return jax.nn.sigmoid(x) ** 2

    inputs = {"x": derivcheck.real(shape=(3,), bound=10.0)}
    right = derivcheck.check(sigmoid_derivative, jax.nn.sigmoid, inputs=inputs, derivative="derivative",
                             prove=True)
    assert right.verdict == "verified" and right.proof["verdict"] == "proved"
    bad = derivcheck.check(wrong, jax.nn.sigmoid, inputs=inputs, derivative="derivative", prove=True)
    assert bad.verdict == "FAILED" and bad.proof["verdict"] == "disproved"
    plain = derivcheck.check(sigmoid_derivative, jax.nn.sigmoid, inputs=inputs, derivative="derivative")
    assert plain.proof is None


def test_cli_prove_json_and_exit_codes(capsys):
    assert main(["prove", "--claim", "sharma2024/eq3-*", "--format", "json", "--jobs", "1"]) == 0
    rows = json.loads(capsys.readouterr().out)["proofs"]
    assert [(r["id"], r["verdict"], r["contradicts"]) for r in rows] == [
        ("sharma2024/eq3-relu-derivative", "proved", False)]
    assert main(["prove", "--claim", "sharma2024/eq35-relu-backprop", "--jobs", "1"]) == 0
    assert "disproved at n = 1" in capsys.readouterr().out
    assert main(["prove", "--timeout", "-1"]) == 2
    assert "positive number of seconds" in capsys.readouterr().err


def test_verify_prove_puts_the_exact_verdict_beside_the_numerical_one(capsys):
    code = main(["verify", "--claim", "sharma2024/eq35-relu-backprop", "--dtype", "float64", "--prove",
                 "--format", "json", "--jobs", "1"])
    assert code == 0
    (result,) = json.loads(capsys.readouterr().out)["results"]
    assert result["verdict"] == "typo confirmed"
    assert result["proof"]["verdict"] == "disproved"
    assert result["proof"]["difference"][0]["difference"] == "dE_dY_1"


def test_the_committed_reports_show_the_exact_verdicts():
    from derivcheck._report import load_run

    _, results = load_run(REPORTS / "run.json")
    proofs = {r.id: r.proof for r in results if r.proof is not None}
    assert set(proofs) == set(_CLAIMS), "regenerate: .venv/bin/derivcheck report --from reports/run.json --prove"
    page = (REPORTS / "sharma2024.md").read_text(encoding="utf-8")
    assert "### §3.4, Eq. (35) — **typo** — disproved" in page
    assert "closed form - reference = dE_dY_1" in page
