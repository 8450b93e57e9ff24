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

__all__ = ["claims_json", "claims_table", "results_json", "results_table", "write_atomic", "write_junit"]


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
                "author": c.document.author, "location": c.location, "statement": c.statement,
                "expected": c.expected, "reason": c.reason, "preconditions": list(c.preconditions),
                "checked_against": c.checked_against, "corrects": c.corrects, "note": c.note,
            }
            for c in claims
        ],
        indent=2,
    )


def _sci(x: float) -> str:
    return f"{x:.1e}" if x else "0"


def results_table(results: Sequence[Result]) -> str:
    rows = [
        (r.id, r.dtype, r.expected, r.verdict, r.points, _sci(r.max_rel_error), f"{r.max_error_ratio:.2g}")
        for r in results
    ]
    table = _table(rows, ("claim", "dtype", "expected", "verdict", "points", "max rel err", "err/tol"))
    lines = [table, ""]
    for r in results:
        if r.verdict in FAILURE_VERDICTS:
            lines.append(f"{r.verdict}: {r.id} [{r.dtype}] {r.detail}")
            if r.counterexample:
                ce = r.counterexample
                lines.append(
                    f"  worst at output {ce['output']}{ce['index']}: closed form {ce['closed_form']!r}, "
                    f"reference {ce['reference']!r}, |error| {ce['abs_error']:.3g} > tolerance {ce['tolerance']:.3g}"
                )
                lines.append(f"  inputs: {json.dumps(jsonable(ce['inputs']))}")
            lines.append(f"  replay: {r.replay}")
    counts = Counter(r.verdict for r in results)
    failed = sum(counts[v] for v in FAILURE_VERDICTS)
    summary = ", ".join(f"{n} {v}" for v, n in sorted(counts.items()))
    lines.append(f"{len(results)} results: {summary}. Gate {'FAILED' if failed else 'passed'}.")
    return "\n".join(lines)


def results_json(results: Sequence[Result], environment: dict[str, Any]) -> str:
    payload = {"environment": environment, "results": [r.to_json() for r in results]}
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
