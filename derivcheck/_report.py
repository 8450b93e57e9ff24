"""Derivation reports: per document, what holds, what does not, and why (HTML and Markdown).

Written from results (a fresh run, or a saved ``derivcheck verify --format json`` run) and
the catalog, which supplies each claim's statement, location, reason and correction:

* ``index.html`` and ``<document>.html``: self-contained pages (inline CSS and SVG, MathML
  from the claims' LaTeX via latex2mathml; no script, font or stylesheet is fetched);
* ``index.md`` and ``<document>.md``: GitHub-flavoured Markdown with ``$...$`` math, the
  figures as ``figures/<document>.svg``;
* ``run.json``: the raw results and the environment, in the format of ``verify --format
  json``, so ``derivcheck report --from run.json`` redraws the same reports.

Nothing here runs a check; timings are left out of the pages, so that regenerating a
report with the same seed and profile on the same versions gives the same pages.
"""

from __future__ import annotations

import html
import io
import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from derivcheck._output import _sci, counterexample_lines, results_json, write_atomic
from derivcheck.claims import Claim, Document
from derivcheck.errors import InvalidArgument
from derivcheck.results import FAILURE_VERDICTS, RATIO_LOG10_EDGES, Result, Verdict

__all__ = ["load_run", "write_reports"]

_VERDICT_CLASS = {
    Verdict.VERIFIED: "ok",
    Verdict.ERRATUM_CONFIRMED: "erratum",
    Verdict.TYPO_CONFIRMED: "typo",
    Verdict.CONDITIONAL_CONFIRMED: "conditional",
    Verdict.FAILED: "failure",
    Verdict.ERRATUM_NOT_REPRODUCED: "failure",
    Verdict.TYPO_NOT_REPRODUCED: "failure",
}
# Table cells coloured by their text: the verdicts, and the kinds in the expected column.
_CELL_CLASS = {**_VERDICT_CLASS, "erratum": "erratum", "typo": "typo"}

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; max-width: 68rem; margin: 2rem auto;
       padding: 0 1rem; color: #1b1b1b; line-height: 1.45; }
h1 { margin-bottom: .2rem; } h2 { margin-top: 2.2rem; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: .6rem 0; font-size: .92rem; }
th, td { border: 1px solid #d0d0d0; padding: .25rem .5rem; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.ok { color: #14622d; } .conditional { color: #1f4e99; }
.erratum { color: #8a1c00; font-weight: 600; } .typo { color: #7a5a00; font-weight: 600; }
.failure { color: #fff; background: #b00020; font-weight: 700; }
section.claim { border-left: 4px solid #9bbf9b; padding: .1rem 0 .1rem 1rem; margin: 1.6rem 0; }
section.claim.is-erratum { border-left-color: #d2691e; background: #fff7f0; }
section.claim.is-typo { border-left-color: #d4a017; background: #fffbea; }
section.claim.is-conditional { border-left-color: #6a8fd0; }
section.claim.is-failure { border-left-color: #b00020; background: #fff0f0; }
.badge { display: inline-block; font-size: .75rem; padding: .05rem .4rem; border-radius: .25rem;
         border: 1px solid currentColor; margin-left: .4rem; vertical-align: middle; }
.badge.proved { color: #1b6e20; } .badge.disproved { color: #8a4b00; }
.statement { font-size: 1.15rem; margin: .6rem 0; overflow-x: auto; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .2rem .8rem; }
dt { font-weight: 600; } dd { margin: 0; }
pre { background: #f6f6f6; padding: .5rem; overflow-x: auto; font-size: .85rem; }
.env { color: #555; font-size: .9rem; }
figure { margin: 1rem 0; } figure svg { max-width: 100%; height: auto; }
"""


def load_run(path: str | Path, option: str = "--from") -> tuple[dict[str, Any], list[Result]]:
    """The environment and results of a saved run; :class:`InvalidArgument` if it is not one
    (the message names ``option`` and ``path``)."""
    where = f"{option} {path}".strip()
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InvalidArgument(f"{where}: no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidArgument(f"{where}: not a JSON file ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("results"), list):
        raise InvalidArgument(f"{where}: not a derivcheck run (write one with derivcheck verify --format json)")
    try:
        results = [Result.from_json(r) for r in data["results"]]
    except (TypeError, ValueError, KeyError) as exc:
        raise InvalidArgument(f"{where}: a result cannot be read: {exc}") from None
    return dict(data.get("environment") or {}), results


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _mathml(latex: str) -> str:
    from latex2mathml.converter import convert

    return convert(latex, display="block")


def _anchor(claim_id: str) -> str:
    return claim_id.split("/", 1)[-1]  # ids without a document prefix are their own anchor


def _page_name(document: Document) -> str:
    return document.key


# ---------------------------------------------------------------------------------------
# The figure: per claim and dtype, where its points fall against the tolerance.


def error_figure_svg(rows: Sequence[tuple[str, Sequence[int]]], title: str) -> str:
    """A strip per row (label, histogram over :data:`RATIO_LOG10_EDGES`): the share of
    points in each half-decade of error / tolerance, on a log colour scale; the dashed line
    is the tolerance. Deterministic SVG (fixed ids, no date), text kept as text."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.backends.backend_svg import FigureCanvasSVG
    from matplotlib.colors import LogNorm
    from matplotlib.figure import Figure

    edges = np.array([RATIO_LOG10_EDGES[0] - 1, *RATIO_LOG10_EDGES, RATIO_LOG10_EDGES[-1] + 1])
    shares = np.array([np.asarray(h, float) / max(sum(h), 1) for _, h in rows])
    shares = np.where(shares > 0, shares, np.nan)
    with matplotlib.rc_context({"svg.hashsalt": "derivcheck", "svg.fonttype": "none", "font.size": 8}):
        fig = Figure(figsize=(9.0, 1.0 + 0.19 * len(rows)))
        FigureCanvasSVG(fig)
        ax = fig.add_axes((0.34, 0.7 / (1.0 + 0.19 * len(rows)), 0.56, 1 - 1.0 / (1.0 + 0.19 * len(rows))))
        mesh = ax.pcolormesh(edges, np.arange(len(rows) + 1), shares, cmap="viridis_r",
                             norm=LogNorm(vmin=1e-4, vmax=1.0), shading="flat", rasterized=True)
        ax.axvline(0.0, color="#b00020", linestyle="--", linewidth=1.0)
        ax.set_yticks(np.arange(len(rows)) + 0.5, [label for label, _ in rows])
        ax.invert_yaxis()
        inner = [int(t) for t in RATIO_LOG10_EDGES[1:-1] if t == int(t)]
        ax.set_xticks([edges[0] + 0.5, *inner, edges[-1] - 0.5],
                      ["≤1e-6", *(f"1e{t}" for t in inner), ">1e3"])
        ax.set_xlabel("worst |error| / tolerance of a point (the dashed line: the tolerance)")
        ax.set_title(title, loc="left")
        bar = fig.add_axes((0.92, 0.7 / (1.0 + 0.19 * len(rows)), 0.015, 0.25))
        fig.colorbar(mesh, cax=bar, label="share of points")
        out = io.StringIO()
        fig.savefig(out, format="svg", metadata={"Date": None, "Creator": "derivcheck"})
    svg = out.getvalue()
    return svg[svg.index("<svg"):]  # inline in HTML: without the XML prologue and doctype


# ---------------------------------------------------------------------------------------
# Page content, shared by HTML and Markdown.


def _by_claim(results: Sequence[Result]) -> dict[str, list[Result]]:
    out: dict[str, list[Result]] = {}
    for r in results:
        out.setdefault(r.id, []).append(r)
    return out


_WHY = {"holds": "Why", "conditional": "Why", "erratum": "Why it is wrong", "typo": "The slip"}
_INDEX_HEADER = ("document", "author", "seed file", "claims", "hold", "errata", "typos", "conditional", "failures")


def _count(n: int, noun: str, plural: str | None = None) -> str:
    return f"{n} {noun if n == 1 else plural or noun + 's'}"


def _claim_status(claim: Claim, results: Sequence[Result]) -> str:
    if any(r.verdict in FAILURE_VERDICTS for r in results):
        return "failure"
    return {"holds": "ok", "erratum": "erratum", "typo": "typo", "conditional": "conditional"}[claim.expected]


def _status_counts(claims: Sequence[Claim], by_claim: dict[str, list[Result]]) -> Counter:
    return Counter(_claim_status(c, by_claim.get(c.id, [])) for c in claims)


def _environment_line(env: dict[str, Any]) -> str:
    parts = [f"jax {env.get('jax', '?')}", f"jaxlib {env.get('jaxlib', '?')}",
             f"{env.get('platform', '?')} ({env.get('device_kind', '?')})",
             f"matmul precision {env.get('matmul_precision', '?')}",
             f"profile {env.get('profile', '?')}", f"seed {env.get('seed', '?')}"]
    return ", ".join(parts)


def _result_rows(results: Sequence[Result]) -> list[tuple[str, ...]]:
    return [
        (r.dtype, r.device.split()[0], r.verdict, str(r.points), str(r.undecided), _sci(r.max_abs_error, 2),
         _sci(r.max_rel_error, 2), f"{r.max_error_ratio:.2g}",
         _sci(r.autodiff_error, 2) if r.dtype == "float32" else "—")
        for r in results
    ]


_RESULT_HEADER = ("dtype", "device", "verdict", "points", "undecided", "max abs err", "max rel err (ref ≠ 0)",
                  "err / tol", "float32 autodiff err")


# ---------------------------------------------------------------------------------------
# HTML


def _html_page(title: str, body: str) -> str:
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        f"<title>{_e(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n"
    )


def _html_table(header: Sequence[str], rows: Sequence[Sequence[str]], raw: bool = False) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = []
    for row in rows:
        cells = []
        for cell in row:
            text = cell if raw else _e(cell)
            cls = _CELL_CLASS.get(cell)
            numeric = not raw and cell.replace(".", "", 1).replace("e-", "").replace("e+", "").isdigit()
            attr = f' class="{cls}"' if cls else (' class="num"' if numeric else "")
            cells.append(f"<td{attr}>{text}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _proof_of(results: Sequence[Result]) -> dict[str, Any] | None:
    """The claim's exact verdict (:mod:`derivcheck._prove`), where the run asked for one."""
    return next((r.proof for r in results if r.proof is not None), None)


def _proof_badge(proof: dict[str, Any] | None) -> str:
    if proof is None or proof["verdict"] not in ("proved", "disproved"):
        return ""
    return f'<span class="badge {proof["verdict"]}">{proof["verdict"]}</span>'


def _difference_lines(proof: dict[str, Any]) -> list[str]:
    """A disproof's exact difference, per differing element, as text."""
    return [f"{d['output']}{d['index']}: closed form - reference = {d['difference']}" for d in proof["difference"]]


def _proof_html(proof: dict[str, Any]) -> list[str]:
    parts = [f"<dt>Exact verdict</dt><dd>{_e(proof['summary'])}</dd>"]
    if proof["verdict"] == "disproved":
        where = f" where {_e(proof['condition'])}" if proof["condition"] else ""
        rows = "".join(f"<li><code>{_e(d['output'])}{_e(d['index'])}</code>: "
                       f'<math display="inline">{d["mathml"]}</math></li>' for d in proof["difference"])
        parts.append(f"<dt>Exact difference</dt><dd>closed form &minus; reference{where}:<ul>{rows}</ul></dd>")
        numeric = proof["numeric"]
        point = ", ".join(f"{k} = {v}" for k, v in proof["counterexample"].items())
        parts.append(f"<dt>Exact counterexample</dt><dd><code>{_e(point)}</code>: in float64 the closed form gives "
                     f"{numeric['closed_form']:.6g}, the reference {numeric['reference']:.6g} at "
                     f"{_e(numeric['output'])}{_e(numeric['index'])} (exact difference "
                     f"{numeric['exact_difference']:.6g})</dd>")
    return parts


def _html_claim(claim: Claim, results: Sequence[Result], corrected: Claim | None,
                corrected_results: Sequence[Result], corrects: Claim | None) -> str:
    status = _claim_status(claim, results)
    badge = {"erratum": "erratum", "typo": "typo", "conditional": "conditional", "failure": "FAILURE"}.get(status)
    proof = _proof_of(results)
    parts = [f'<section class="claim is-{status}" id="{_e(_anchor(claim.id))}">',
             f"<h3>{_e(claim.location)} <small><code>{_e(claim.id)}</code></small>"
             + (f'<span class="badge {status}">{badge}</span>' if badge else "") + _proof_badge(proof) + "</h3>",
             f'<div class="statement">{_mathml(claim.statement)}</div>', "<dl>",
             f"<dt>Checked against</dt><dd>{_e(claim.checked_against)}</dd>",
             f"<dt>Expected</dt><dd>{_e(claim.expected)}</dd>"]
    if claim.reason:
        why = _WHY[claim.expected]
        parts.append(f"<dt>{why}</dt><dd>{_e(claim.reason)}</dd>")
    if claim.preconditions:
        parts.append(f"<dt>Holds under</dt><dd>{_e('; '.join(claim.preconditions))}</dd>")
    if corrects is not None:
        parts.append(f'<dt>Corrects</dt><dd><a href="#{_e(_anchor(corrects.id))}">{_e(corrects.location)} '
                     f"(<code>{_e(corrects.id)}</code>)</a>, printed wrong: {_e(corrects.expected)}</dd>")
    if claim.note:
        parts.append(f"<dt>Transcription note</dt><dd>{_e(claim.note)}</dd>")
    for line in _float16_ranges(claim, results):
        parts.append(f"<dt>Drawn in float16</dt><dd>{_e(line)}</dd>")
    for reason in sorted({r.vacuous for r in results if r.vacuous}):
        parts.append(f'<dt class="failure">Vacuous</dt><dd>{_e(reason)}</dd>')
    if proof is not None:
        parts += _proof_html(proof)
    parts.append("</dl>")
    if results:
        parts.append(_html_table(_RESULT_HEADER, _result_rows(results)))
        for r in results:
            parts.append(f"<p>{_e(r.dtype)} on {_e(r.device)}: <span class=\"{_VERDICT_CLASS[r.verdict]}\">"
                         f"{_e(r.verdict)}</span>, {_e(r.detail)}.</p>")
            if r.counterexample and (not r.passed or claim.printed_wrong):
                parts.append(f"<p>Counterexample ({_e(r.dtype)}):</p><pre>"
                             + _e("\n".join(counterexample_lines(r.counterexample))) + "</pre>")
            if r.outside is not None and r.outside.counterexample:
                parts.append(f"<p>Outside its condition ({_e(r.dtype)}): fails at {r.outside.failures} of "
                             f"{r.outside.points} points, for example:</p><pre>"
                             + _e("\n".join(counterexample_lines(r.outside.counterexample))) + "</pre>")
    else:
        parts.append("<p><em>Not checked in this run.</em></p>")
    if corrected is not None:
        verdicts = ", ".join(f"{r.dtype}: {r.verdict}" for r in corrected_results) or "not checked in this run"
        parts.append(f'<p><strong>Corrected formula</strong> (<a href="#{_e(_anchor(corrected.id))}">'
                     f"<code>{_e(corrected.id)}</code></a>), {_e(verdicts)}:</p>"
                     f'<div class="statement">{_mathml(corrected.statement)}</div>')
    parts.append("</section>")
    return "\n".join(parts)


def _summary_rows(claims: Sequence[Claim], by_claim: dict[str, list[Result]], link) -> list[tuple[str, ...]]:
    rows = []
    for c in claims:
        results = by_claim.get(c.id, [])
        verdict = {dt: ", ".join(sorted({r.verdict for r in results if r.dtype == dt})) or "—"
                   for dt in ("float32", "float64")}
        worst = max((r.max_error_ratio for r in results), default=float("nan"))
        rows.append((link(c), c.location, c.expected, verdict["float32"], verdict["float64"],
                     str(sum(r.points for r in results)), f"{worst:.2g}"))
    return rows


_SUMMARY_HEADER = ("claim", "location", "expected", "float32", "float64", "points", "max err / tol")


def _figure_rows(claims: Sequence[Claim], by_claim: dict[str, list[Result]]) -> list[tuple[str, Sequence[int]]]:
    rows = []
    for c in claims:
        for r in by_claim.get(c.id, []):
            if r.ratio_histogram:
                rows.append((f"{c.location} · {r.dtype}" + (f" ({c.expected})" if c.printed_wrong else ""),
                             r.ratio_histogram))
    return rows


def _document_html(document: Document, claims: Sequence[Claim], by_claim, env, figure: str | None,
                   corrections: dict[str, Claim], by_id: dict[str, Claim]) -> str:
    def link(c: Claim) -> str:
        return f'<a href="#{_e(_anchor(c.id))}"><code>{_e(c.id)}</code></a>'

    summary = _html_table(_SUMMARY_HEADER, [
        (row[0], *(_e(x) for x in row[1:])) for row in _summary_rows(claims, by_claim, link)], raw=True)
    counts = _status_counts(claims, by_claim)
    body = [
        '<nav><a href="index.html">All documents</a></nav>',
        f"<h1>{_e(document.title)}</h1>",
        f"<p>{_e(document.author)} · {_source_html(document)} · {len(claims)} claims: "
        f"{counts['ok']} hold, <span class=\"erratum\">{_count(counts['erratum'], 'erratum', 'errata')}</span>, "
        f"<span class=\"typo\">{_count(counts['typo'], 'typo')}</span>, {counts['conditional']} conditional"
        + (f', <span class="failure">{counts["failure"]} failures</span>' if counts["failure"] else "") + "</p>",
        f'<p class="env">{_e(_environment_line(env))}. Every claim is checked against JAX autodiff of the '
        "forward definition, evaluated in float64, within a tolerance derived from the rounding error of "
        "both computations.</p>",
        "<h2>Summary</h2>", summary,
    ]
    if figure:
        body += ["<h2>Errors against the tolerance</h2>",
                 f"<figure>{figure}<figcaption>Where each claim's points fall against its tolerance (dashed line), "
                 "per dtype. A claim that holds lies left of the line; an erratum's or a typo's mass lies right of it."
                 "</figcaption></figure>"]
    body.append("<h2>Claims, in document order</h2>")
    for c in claims:
        corrected = corrections.get(c.id)
        body.append(_html_claim(c, by_claim.get(c.id, []), corrected,
                                by_claim.get(corrected.id, []) if corrected else [],
                                by_id.get(c.corrects) if c.corrects else None))
    return _html_page(f"{document.title}: derivcheck report", "\n".join(body))


def _source_html(document: Document) -> str:
    """The seed file as the bundled reports print it; a user document's citation and link."""
    if not (document.url or document.citation):
        return f"seed file <code>{_e(document.seed)}</code>"
    seed = (f'<a href="{_e(document.url)}"><code>{_e(document.seed)}</code></a>' if document.url
            else f"<code>{_e(document.seed)}</code>")
    return f"source {seed}" + (f" · {_e(document.citation)}" if document.citation else "")


def _source_md(document: Document) -> str:
    if not (document.url or document.citation):
        return f"seed file `{document.seed}`"
    seed = f"[`{document.seed}`]({document.url})" if document.url else f"`{document.seed}`"
    return f"source {seed}" + (f" · {document.citation}" if document.citation else "")


def _index_html(documents: Sequence[tuple[Document, Sequence[Claim]]], by_claim, env) -> str:
    rows = []
    for document, claims in documents:
        counts = _status_counts(claims, by_claim)
        rows.append((f'<a href="{_e(_page_name(document))}.html">{_e(document.title)}</a>', _e(document.author),
                     f"<code>{_e(document.seed)}</code>", str(len(claims)), str(counts["ok"]),
                     f'<span class="erratum">{counts["erratum"]}</span>', f'<span class="typo">{counts["typo"]}</span>',
                     str(counts["conditional"]),
                     f'<span class="failure">{counts["failure"]}</span>' if counts["failure"] else "0"))
    table = _html_table(_INDEX_HEADER,
                        rows, raw=True)
    body = [
        "<h1>derivcheck: derivation reports</h1>",
        f'<p class="env">{_e(_environment_line(env))}.</p>',
        "<p>Each page takes a document equation by equation: the formula as printed, what it was checked "
        "against, the verdict per dtype and device, the errors, and for every erratum and typo a minimal "
        "counterexample and the corrected formula with its own verdict. The raw results are in "
        '<a href="run.json"><code>run.json</code></a>.</p>',
        table,
        "<h2>Verdicts</h2><dl>"
        f'<dt class="ok">{Verdict.VERIFIED}</dt><dd>holds within tolerance at every point tried</dd>'
        f'<dt class="erratum">{Verdict.ERRATUM_CONFIRMED}</dt><dd>printed wrong in its reasoning (or with a repair '
        "the document never gives), and shown wrong by a counterexample</dd>"
        f'<dt class="typo">{Verdict.TYPO_CONFIRMED}</dt><dd>a slip of one symbol: wrong as printed, shown wrong by a '
        "counterexample, while the repair the document itself uses elsewhere holds</dd>"
        f'<dt class="conditional">{Verdict.CONDITIONAL_CONFIRMED}</dt><dd>holds under its stated condition and '
        "fails without it</dd>"
        f'<dt class="failure">{Verdict.FAILED}</dt><dd>a claim expected to hold does not</dd>'
        f'<dt class="failure">{Verdict.ERRATUM_NOT_REPRODUCED}</dt><dd>a documented erratum passes</dd>'
        f'<dt class="failure">{Verdict.TYPO_NOT_REPRODUCED}</dt><dd>a documented typo passes as printed</dd></dl>',
    ]
    return _html_page("derivcheck: derivation reports", "\n".join(body))


# ---------------------------------------------------------------------------------------
# Markdown (GitHub-flavoured, $...$ math)


def _md_cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _md_math(latex: str) -> str:
    return f"$$\n{latex}\n$$"


def _float16_ranges(claim: Claim, results: Sequence[Result]) -> tuple[str, ...]:
    """The smaller inputs a float16 run drew (``Arg.float16_bound``), where one was run."""
    if not any(r.dtype == "float16" for r in results):
        return ()
    return claim.domain.float16_ranges()


def _md_claim(claim: Claim, results, corrected, corrected_results, corrects) -> str:
    status = _claim_status(claim, results)
    badge = {"erratum": " — **erratum**", "typo": " — **typo**", "conditional": " — conditional",
             "failure": " — **FAILURE**"}.get(status, "")
    proved = (_proof_of(results) or {}).get("verdict")
    badge += f" — {proved}" if proved in ("proved", "disproved") else ""
    lines = [f"### {claim.location}{badge}", "", f"`{claim.id}`", "", _md_math(claim.statement), "",
             f"- **Checked against:** {claim.checked_against}", f"- **Expected:** {claim.expected}"]
    if claim.reason:
        lines.append(f"- **{_WHY[claim.expected]}:** {claim.reason}")
    if claim.preconditions:
        lines.append(f"- **Holds under:** {'; '.join(claim.preconditions)}")
    if corrects is not None:
        lines.append(f"- **Corrects:** {corrects.location} (`{corrects.id}`), printed wrong: {corrects.expected}")
    if claim.note:
        lines.append(f"- **Transcription note:** {claim.note}")
    for line in _float16_ranges(claim, results):
        lines.append(f"- **Drawn in float16:** {line}")
    for reason in sorted({r.vacuous for r in results if r.vacuous}):
        lines.append(f"- **Vacuous:** {reason}")
    proof = _proof_of(results)
    if proof is not None:
        lines.append(f"- **Exact verdict:** {proof['summary']}")
        if proof["verdict"] == "disproved":
            where = f" where {proof['condition']}" if proof["condition"] else ""
            point = ", ".join(f"{k} = {v}" for k, v in proof["counterexample"].items())
            lines += [f"- **Exact difference** (closed form − reference{where}):", "", "  ```",
                      *(f"  {line}" for line in _difference_lines(proof)), "  ```", "",
                      f"- **Exact counterexample:** `{point}`"]
    lines.append("")
    if results:
        lines += [_md_table(_RESULT_HEADER, _result_rows(results)), ""]
        for r in results:
            lines += [f"{r.dtype} on {r.device}: **{r.verdict}**, {r.detail}.", ""]
            if r.counterexample and (not r.passed or claim.printed_wrong):
                lines += [f"Counterexample ({r.dtype}):", "", "```", *counterexample_lines(r.counterexample),
                          "```", ""]
            if r.outside is not None and r.outside.counterexample:
                lines += [f"Outside its condition ({r.dtype}): fails at {r.outside.failures} of {r.outside.points} "
                          "points, for example:", "", "```", *counterexample_lines(r.outside.counterexample),
                          "```", ""]
    else:
        lines += ["*Not checked in this run.*", ""]
    if corrected is not None:
        verdicts = ", ".join(f"{r.dtype}: {r.verdict}" for r in corrected_results) or "not checked in this run"
        lines += [f"**Corrected formula** (`{corrected.id}`), {verdicts}:", "", _md_math(corrected.statement), ""]
    return "\n".join(lines)


def _document_md(document, claims, by_claim, env, figure_path: str | None, corrections, by_id) -> str:
    counts = _status_counts(claims, by_claim)
    lines = [
        f"# {document.title}", "", "[All documents](index.md)", "",
        f"{document.author} · {_source_md(document)} · {len(claims)} claims: {counts['ok']} hold, "
        f"**{_count(counts['erratum'], 'erratum', 'errata')}**, **{_count(counts['typo'], 'typo')}**, "
        f"{counts['conditional']} conditional"
        + (f", **{counts['failure']} failures**" if counts["failure"] else ""), "",
        f"{_environment_line(env)}.", "", "## Summary", "",
        _md_table(_SUMMARY_HEADER, _summary_rows(claims, by_claim, lambda c: f"`{c.id}`")), "",
    ]
    if figure_path:
        lines += ["## Errors against the tolerance", "", f"![Where each claim's points fall against its tolerance, "
                  f"per dtype]({figure_path})", ""]
    lines += ["## Claims, in document order", ""]
    for c in claims:
        corrected = corrections.get(c.id)
        lines += [_md_claim(c, by_claim.get(c.id, []), corrected, by_claim.get(corrected.id, []) if corrected else [],
                            by_id.get(c.corrects) if c.corrects else None), ""]
    return "\n".join(lines).rstrip() + "\n"


def _index_md(documents, by_claim, env) -> str:
    rows = []
    for document, claims in documents:
        counts = _status_counts(claims, by_claim)
        rows.append((f"[{document.title}]({_page_name(document)}.md)", document.author, f"`{document.seed}`",
                     str(len(claims)), str(counts["ok"]), f"**{counts['erratum']}**", f"**{counts['typo']}**",
                     str(counts["conditional"]),
                     str(counts["failure"])))
    lines = ["# derivcheck: derivation reports", "", f"{_environment_line(env)}.", "",
             _md_table(_INDEX_HEADER,
                       rows), "", "Raw results: [run.json](run.json). The same reports as HTML: "
             "[index.html](index.html)."]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------


def write_reports(results: Sequence[Result], environment: dict[str, Any], claims: Sequence[Claim],
                  out_dir: str | Path) -> list[Path]:
    """Write the reports of ``claims`` (in catalog order) from ``results`` into ``out_dir``."""
    out = Path(out_dir)
    (out / "figures").mkdir(parents=True, exist_ok=True)
    by_claim = _by_claim(results)
    by_id = {c.id: c for c in claims}
    corrections = {c.corrects: c for c in claims if c.corrects}
    documents: dict[str, tuple[Document, list[Claim]]] = {}
    for c in claims:
        documents.setdefault(c.document.key, (c.document, []))[1].append(c)
    written = []
    for document, doc_claims in documents.values():
        rows = _figure_rows(doc_claims, by_claim)
        figure = error_figure_svg(rows, document.title) if rows else None
        figure_path = None
        if figure:
            figure_path = f"figures/{_page_name(document)}.svg"
            write_atomic(out / figure_path, figure)
            written.append(out / figure_path)
        page = out / f"{_page_name(document)}.html"
        write_atomic(page, _document_html(document, doc_claims, by_claim, environment, figure, corrections, by_id))
        md = out / f"{_page_name(document)}.md"
        write_atomic(md, _document_md(document, doc_claims, by_claim, environment, figure_path, corrections, by_id))
        written += [page, md]
    docs = list(documents.values())
    write_atomic(out / "index.html", _index_html(docs, by_claim, environment))
    write_atomic(out / "index.md", _index_md(docs, by_claim, environment))
    write_atomic(out / "run.json", results_json(results, environment) + "\n")
    return [out / "index.html", out / "index.md", out / "run.json", *written]
