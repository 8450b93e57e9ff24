"""Writers for results: the terminal table, JSON and JUnit XML."""

from __future__ import annotations

import json
import math
import os
import tempfile
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from derivcheck.claims import Claim
from derivcheck.results import FAILURE_VERDICTS, Result

__all__ = [
    "bench_json", "bench_tables", "claims_json", "claims_table", "counterexample_lines", "failure_lines",
    "results_json", "results_table", "selftest_json", "selftest_table",
    "write_atomic", "write_junit",
]


def jsonable(obj: Any) -> Any:
    """``obj`` with every non-finite float spelled as a string: JSON has no NaN or inf."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return "nan" if math.isnan(obj) else ("inf" if obj > 0 else "-inf")
    if isinstance(obj, dict):
        return {k: jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    return obj


def write_atomic(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` whole or not at all (no half-written file on interrupt)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # as open() would have made it, not mkstemp's 0600
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def _table(rows: Sequence[Sequence[str]], header: Sequence[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    lines = [fmt.format(*header), fmt.format(*("-" * w for w in widths))]
    lines += [fmt.format(*map(str, r)) for r in rows]
    return "\n".join(line.rstrip() for line in lines)


def claims_table(claims: Sequence[Claim]) -> str:
    rows = [(c.id, c.location, c.expected, c.reason) for c in claims]
    return _table(rows, ("id", "location", "expected", "reason"))


def claims_json(claims: Sequence[Claim]) -> str:
    return json.dumps(
        [
            {
                "id": c.id, "document": c.document.seed, "title": c.document.title,
                "author": c.document.author, "citation": c.document.citation,
                "url": c.document.url, "location": c.location, "statement": c.statement,
                "expected": c.expected, "reason": c.reason, "preconditions": list(c.preconditions),
                "checked_against": c.checked_against, "corrects": c.corrects, "note": c.note,
            }
            for c in claims
        ],
        indent=2,
    )


def _sci(x: float, digits: int = 1) -> str:
    return f"{x:.{digits}e}" if x else "0"


def results_table(results: Sequence[Result], comparison: Sequence[dict] = ()) -> str:
    """The verdicts as a terminal table; failures with their counterexample and replay.

    With results from several devices, a device column and the device comparison
    (:func:`derivcheck._runner.compare_devices`) are added; a disagreement fails the gate.
    """
    several = len({r.device for r in results}) > 1
    seeds = len({r.seed for r in results}) > 1
    rows = [
        (r.id, r.dtype, *((r.device.split()[0],) if several else ()), *((str(r.seed),) if seeds else ()),
         r.expected, r.verdict, r.points, _sci(r.max_rel_error), f"{r.max_error_ratio:.2g}")
        for r in results
    ]
    header = ("claim", "dtype", *(("device",) if several else ()), *(("seed",) if seeds else ()), "expected",
              "verdict", "points", "max rel err", "err/tol")
    lines = [_table(rows, header), ""]
    for r in results:
        if r.verdict in FAILURE_VERDICTS:
            lines.extend(failure_lines(r))
    for r in results:
        if r.vacuous:
            lines.append(f"VACUOUS: {r.id} [{r.dtype}] proves nothing: {r.vacuous}")
    disagreements = [row for row in comparison if not row["agree"]]
    if comparison:
        devices = len(comparison[0]["devices"])
        spread = max(row["error_ratio_spread"] for row in comparison)
        lines.append(f"Devices compared: {len(comparison)} claim and dtype pairs on {devices} devices; "
                     f"{len(comparison) - len(disagreements)} agree; largest spread of err/tol {spread:.2g}.")
    for row in disagreements:
        lines.append(f"DEVICES DISAGREE: {row['id']} [{row['dtype']}] verdicts {row['verdicts']}; "
                     f"{', '.join(row['differing'])} differ from {row['devices'][0]}")
    counts = Counter(r.verdict for r in results)
    failed = sum(counts[v] for v in FAILURE_VERDICTS) + len(disagreements)
    summary = ", ".join(f"{n} {v}" for v, n in sorted(counts.items()))
    lines.append(f"{len(results)} results: {summary}. Gate {'FAILED' if failed else 'passed'}.")
    return "\n".join(lines)


def failure_lines(r: Result) -> list[str]:
    """What a failing result says: the verdict, where it is worst, the input, the replay."""
    lines = [f"{r.verdict}: {r.id} [{r.dtype}] {r.detail}", f"  checked: {r.location}"]
    if r.counterexample:
        lines += [f"  {line}" for line in counterexample_lines(r.counterexample)]
    lines.append(f"  replay: {r.replay}")
    return lines


def counterexample_lines(ce: dict[str, Any]) -> list[str]:
    """A counterexample in two lines: where it is worst and by how much, and the input."""
    where = f"element {ce['index']}" if ce["output"] == "output" else f"output {ce['output']}{ce['index']}"
    reference = ce["reference"]
    if isinstance(reference, list):
        reference = f"between {reference[0]!r} and {reference[1]!r} (one-sided derivatives at a kink)"
    else:
        reference = repr(reference)
    if math.isfinite(ce["closed_form"]):
        off = f", |error| {ce['abs_error']:.3g} > tolerance {ce['tolerance']:.3g}"
    else:  # nothing to measure: a non-finite value where the truth is finite
        off = " (non-finite where the truth is finite)"
    return [
        f"worst at {where}: closed form {ce['closed_form']!r}, reference {reference}{off}",
        f"{'minimal ' if ce.get('shrunk') else ''}input: {json.dumps(jsonable(ce['inputs']))}",
    ]


def results_json(results: Sequence[Result], environment: dict[str, Any], comparison: Sequence[dict] = ()) -> str:
    payload = {"environment": environment, "results": [r.to_json() for r in results],
               "device_comparison": list(comparison)}
    return json.dumps(jsonable(payload), indent=2)


def write_junit(path: str | Path, results: Sequence[Result], environment: dict[str, Any]) -> None:
    """JUnit XML: one test case per (claim, dtype); gate failures are ``<failure>``."""
    failures = sum(not r.passed for r in results)
    suites = ET.Element("testsuites", name="derivcheck", tests=str(len(results)), failures=str(failures))
    suite = ET.SubElement(
        suites, "testsuite", name="derivcheck verify", tests=str(len(results)),
        failures=str(failures), errors="0", time=f"{sum(r.elapsed_s for r in results):.3f}",
    )
    props = ET.SubElement(suite, "properties")
    for key, value in environment.items():
        ET.SubElement(props, "property", name=key, value=str(value))
    for r in results:
        case = ET.SubElement(
            suite, "testcase", classname=r.document, name=f"{r.id}[{r.dtype}]", time=f"{r.elapsed_s:.3f}"
        )
        body = json.dumps(jsonable({"verdict": r.verdict, "detail": r.detail, "points": r.points,
                                    "counterexample": r.counterexample, "replay": r.replay}), indent=2)
        if r.passed:
            ET.SubElement(case, "system-out").text = body
        else:
            ET.SubElement(case, "failure", message=f"{r.verdict}: {r.detail}", type=r.verdict).text = body
    ET.indent(suites)
    write_atomic(path, ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n")


def _rate(points: int, seconds: float) -> str:
    return f"{points / seconds:,.0f}" if seconds > 0 else "-"


def _ratio(a: float, b: float) -> str:
    return f"{a / b:,.0f}x" if a > 0 and b > 0 else "-"


def _throughput_summary(rows) -> list[tuple[str, ...]]:
    groups: dict[str, list] = {}
    for row in rows:
        groups.setdefault(row.id.split("/")[0], []).append(row)
    if len(groups) > 1:
        groups["all claims"] = list(rows)
    table = []
    for scope, members in groups.items():
        b = (sum(r.batched_points for r in members), sum(r.batched_s for r in members))
        loop = (sum(r.loop_points for r in members), sum(r.loop_s for r in members))
        grads = (sum(r.check_grads_points for r in members), sum(r.check_grads_s for r in members))
        b_rate, l_rate = b[0] / b[1] if b[1] else 0.0, loop[0] / loop[1] if loop[1] else 0.0
        g_rate = grads[0] / grads[1] if grads[1] else 0.0
        table.append((scope, str(len(members)), _rate(*b), _rate(*loop), _rate(*grads), _ratio(b_rate, l_rate),
                      _ratio(b_rate, g_rate), f"{sum(r.batched_compile_s for r in members):.1f}"))
    return table


def _breakdown_totals(rows) -> dict[str, float]:
    from derivcheck._timing import CATEGORIES, OTHER

    return {name: sum(r.seconds[name] for r in rows) for name in (*CATEGORIES, OTHER)}


def _breakdown_tables(rows, start) -> list[str]:
    """A cold gate's time by phase (totals), then the claims that cost most."""
    totals = _breakdown_totals(rows)
    wall = sum(r.wall_s for r in rows)
    lines = [f"Where a gate's time goes: {len(rows)} runs verified in order in one process, "
             f"{wall:.1f} s, {sum(r.compiles for r in rows)} XLA compiles",
             _table([(name, f"{s:.1f}", f"{100 * s / wall:.0f}%" if wall else "-") for name, s in totals.items()],
                    ("phase", "seconds", "share"))]
    if start:
        lines += ["\nProcess start, fresh interpreters (best of 3)",
                  _table([(name, f"{s:.2f}") for name, s in start.items()], ("step", "seconds"))]
    short = {"bound interpreter": "bound", "draw inputs": "draw", "load stored stage": "load"}
    names = list(totals)
    costly = sorted(rows, key=lambda r: r.wall_s, reverse=True)[:15]
    lines += ["\nThe 15 costliest runs (seconds)",
              _table([(r.id, r.dtype, f"{r.wall_s:.2f}", *(f"{r.seconds[n]:.2f}" for n in names)) for r in costly],
                     ("claim", "dtype", "wall", *(short.get(n, n if n != names[-1] else "rest") for n in names)))]
    return lines


def bench_tables(rows, events, scaling, breakdown=(), start=None) -> str:
    """The bench figures as terminal tables."""
    parts = _breakdown_tables(breakdown, start) if breakdown else []
    if rows:
        parts.append("Throughput: points checked per second, steady state (after each method's warm-up)")
        parts.append(_table(_throughput_summary(rows), (
            "scope", "runs", "batched", "per-point loop", "check_grads", "batched/loop",
            "batched/check_grads", "batched compile s")))
        notes = [f"  {r.id} [{r.dtype}]: check_grads {r.check_grads_note}" for r in rows if r.check_grads_note]
        if notes:
            parts.append("check_grads notes (timed all the same):\n" + "\n".join(notes))
    if events is not None and events.counts:
        parts.append("\nCompilation during the throughput run, all three methods (JAX monitoring events)")
        phases = [(k, str(events.counts[k]), f"{events.seconds[k]:.1f}") for k in ("trace", "lower", "compile")]
        parts.append(_table(phases, ("phase", "count", "seconds")))
    if scaling:
        parts.append("\nScaling: seconds per call (best of 5), growth exponent fitted on the 3 largest sizes")
        table = []
        for row in scaling:
            for n, c, a in zip(row["sizes"], row["closed_form_s"], row["autodiff_s"]):
                table.append((row["id"], str(n), f"{c:.2e}", f"{a:.2e}", f"{c / a:.2f}"))
            table.append((f"  {row['compares']}", "exponent", f"{row['closed_form_exponent']:.2f}",
                          f"{row['autodiff_exponent']:.2f}", ""))
        parts.append(_table(table, ("claim", "n", "closed form s", "autodiff s", "ratio")))
    return "\n".join(parts)


def bench_json(rows, events, scaling, env, breakdown=(), start=None) -> str:
    """The bench figures as JSON, every row included."""
    import dataclasses

    return json.dumps(jsonable({
        "environment": env,
        "breakdown": [dataclasses.asdict(r) for r in breakdown],
        "breakdown_totals": _breakdown_totals(breakdown) if breakdown else {},
        "start_up": start or {},
        "throughput": [dataclasses.asdict(r) for r in rows],
        "throughput_summary": [dict(zip(("scope", "runs", "batched_per_s", "loop_per_s", "check_grads_per_s",
                                          "batched_over_loop", "batched_over_check_grads", "batched_compile_s"), t))
                               for t in _throughput_summary(rows)] if rows else [],
        "compile": {k: {"count": events.counts[k], "seconds": events.seconds[k]} for k in ("trace", "lower", "compile")}
        if events is not None else {},
        "scaling": scaling,
    }), indent=2)


def _kills(rows) -> list[tuple[str, ...]]:
    return [(group, f"{killed}/{counted}", f"{100 * killed / counted:.0f}%" if counted else "-", str(equivalent))
            for group, killed, counted, equivalent in rows]


def selftest_table(records) -> str:
    """Kill rates per operator and per claim; equivalent mutants and survivors listed."""
    from derivcheck._selftest import kill_rates, kill_totals

    lines = ["Kill rate per operator (equivalent mutants are listed, not counted)",
             _table(_kills(kill_rates(records, lambda r: r.operator)), ("operator", "killed", "rate", "equivalent")),
             "", "Kill rate per claim",
             _table(_kills(kill_rates(records, lambda r: r.claim)), ("claim", "killed", "rate", "equivalent")), ""]
    for r in records:
        if r.status != "killed":
            lines.append(f"{r.status}: {r.claim} [{r.dtype}] {r.operator}: {r.detail}")
    killed, counted, equivalent = kill_totals(records)
    bad = sum(not r.ok for r in records)
    lines.append(f"{len(records)} mutants: {killed} of {counted} killed, {equivalent} equivalent. "
                 f"Self-test {'FAILED' if bad else 'passed'}.")
    return "\n".join(lines)


def selftest_json(records, environment: dict[str, Any] | None = None) -> str:
    import dataclasses

    from derivcheck._selftest import kill_rates

    def rates(key):
        return [dict(zip(("group", "killed", "counted", "equivalent"), row)) for row in kill_rates(records, key)]

    return json.dumps({"environment": jsonable(environment or {}), "mutants": [dataclasses.asdict(r) for r in records],
                       "per_operator": rates(lambda r: r.operator), "per_claim": rates(lambda r: r.claim)}, indent=2)


def proofs_table(claims: Sequence[Claim], proofs: dict) -> str:
    """The exact verdicts, a row per claim, then the counts per document."""
    from derivcheck._prove import contradicts, expected_proof

    rows = []
    for c in claims:
        p = proofs.get(c.id)
        if p is None:
            continue
        flag = "  CONTRADICTS" if contradicts(c, p) else ""
        rows.append((c.id, c.expected, p.summary()[:150] + flag, f"{p.seconds:.1f}"))
    lines = [_table(rows, ("claim", "expected", "exact verdict", "s"))]
    by_document: dict[str, dict[str, int]] = {}
    for c in claims:
        if c.id in proofs:
            counts = by_document.setdefault(c.document.key, {})
            counts[proofs[c.id].verdict] = counts.get(proofs[c.id].verdict, 0) + 1
    for key, counts in by_document.items():
        lines.append(f"{key}: " + ", ".join(f"{n} {v}" for v, n in sorted(counts.items())))
    wrong = [c.id for c in claims if c.id in proofs and contradicts(c, proofs[c.id])]
    expected = sum(proofs[c.id].verdict == expected_proof(c) for c in claims if c.id in proofs)
    lines.append(f"{expected} of {len(rows)} claims decided as their kind expects"
                 + (f"; CONTRADICTED: {', '.join(wrong)}" if wrong else "; none contradicted"))
    return "\n".join(lines)


def proofs_json(claims: Sequence[Claim], proofs: dict, environment: dict[str, Any]) -> str:
    from derivcheck._prove import contradicts

    rows = [{"id": c.id, "document": c.document.key, "location": c.location, "expected": c.expected,
             "contradicts": contradicts(c, proofs[c.id]), **proofs[c.id].to_json()}
            for c in claims if c.id in proofs]
    return json.dumps(jsonable({"environment": environment, "proofs": rows}), indent=2)
