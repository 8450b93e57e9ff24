"""The ``derivcheck`` command: ``list`` and ``verify``.

Exit codes: 0 every verdict as expected; 1 some verdict not as expected (the gate
fails); 2 a usage error (unknown claim, document, dtype, device or profile; a bad number;
an unwritable output), reported in one line.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from derivcheck.errors import InvalidArgument

EXIT_OK, EXIT_GATE_FAILED, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """A bad argument: one line on stderr, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, not usage text
        raise UsageError(f"{self.prog}: {message}")


def _non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {value}")
    return value


def _positive(text: str) -> int:
    value = _non_negative(text)
    if value == 0:
        raise argparse.ArgumentTypeError("expected a number >= 1, got 0")
    return value


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="derivcheck", description="Verify hand-derived gradients against JAX autodiff.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    lister = commands.add_parser("list", help="list the claims of the catalog")
    lister.add_argument("--document", help="document key, seed file name or number (e.g. 000)")
    lister.add_argument("--format", choices=("table", "json"), default="table")

    verify = commands.add_parser("verify", help="check claims and gate on the verdicts")
    verify.add_argument("--document", help="document key, seed file name or number (e.g. 000)")
    verify.add_argument("--claim", metavar="GLOB", help="claim ids matching this glob")
    verify.add_argument("--dtype", choices=("float32", "float64", "all"), default="all")
    verify.add_argument("--examples", type=_non_negative, help="Hypothesis examples per claim and dtype")
    verify.add_argument("--seed", type=_non_negative, default=0)
    verify.add_argument("--profile", choices=("ci", "dev", "thorough"), default="ci")
    verify.add_argument("--device", choices=("cpu", "gpu", "tpu"), help="default: JAX's default device")
    verify.add_argument("--jobs", type=_positive, metavar="N",
                        help="worker processes (default: one per core on the CPU, 1 on an accelerator)")
    verify.add_argument("--format", choices=("table", "json"), default="table")
    verify.add_argument("--junit", metavar="PATH", help="also write JUnit XML here")
    return parser


def _check_writable(path: str) -> None:
    parent = Path(path).resolve().parent
    if not parent.is_dir():
        raise UsageError(f"cannot write {path}: directory {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise UsageError(f"cannot write {path}: directory {parent} is not writable")


class _Progress:
    """A live line on a terminal; one plain line per result in logs (CI)."""

    def __init__(self, total: int, stream=sys.stderr):
        self.total, self.stream, self.done = total, stream, 0
        self.live = stream.isatty() and not os.environ.get("CI")

    def start(self, label: str) -> None:
        if self.live:
            self.stream.write(f"\r\033[K[{self.done + 1}/{self.total}] {label} ...")
            self.stream.flush()

    def finish(self, label: str, verdict: str, seconds: float) -> None:
        self.done += 1
        line = f"[{self.done}/{self.total}] {label}: {verdict} ({seconds:.1f} s)"
        if self.live:
            self.stream.write(f"\r\033[K{line}" + ("\n" if self.done == self.total else ""))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()


def _cmd_list(args) -> int:
    from derivcheck._output import claims_json, claims_table
    from derivcheck.catalog import select

    claims = select(document=args.document)
    print(claims_json(claims) if args.format == "json" else claims_table(claims))
    return EXIT_OK


def _cmd_verify(args) -> int:
    from derivcheck._checker import ClaimError
    from derivcheck._output import results_json, results_table, write_junit
    from derivcheck._runner import default_jobs, verify_claims
    from derivcheck._verify import resolve_device
    from derivcheck.catalog import select
    from derivcheck.results import environment

    if args.junit:
        _check_writable(args.junit)
    claims = select(document=args.document, pattern=args.claim)
    device = resolve_device(args.device)
    dtypes = ("float32", "float64") if args.dtype == "all" else (args.dtype,)
    progress = _Progress(len(claims) * len(dtypes))
    jobs = args.jobs or default_jobs(device.platform)
    start = time.perf_counter()

    def started(claim) -> None:
        progress.start(claim.id)

    def done(claim, results) -> None:
        for result in results:
            progress.finish(f"{claim.id} [{result.dtype}]", result.verdict, result.elapsed_s)

    try:
        results = verify_claims(claims, dtypes, jobs=jobs, on_start=started, on_done=done,
                                examples=args.examples, seed=args.seed, profile=args.profile,
                                device=args.device)
    except ClaimError as exc:
        raise UsageError(str(exc)) from None
    env = environment(device) | {"seed": args.seed, "profile": args.profile,
                                 "jobs": jobs, "wall_time_s": round(time.perf_counter() - start, 3)}
    print(results_json(results, env) if args.format == "json" else results_table(results))
    if args.junit:
        write_junit(args.junit, results, env)
    return EXIT_OK if all(r.passed for r in results) else EXIT_GATE_FAILED


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = _build_parser().parse_args(argv)
        return {"list": _cmd_list, "verify": _cmd_verify}[args.command](args)
    except (UsageError, InvalidArgument) as exc:
        print(f"derivcheck: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("derivcheck: interrupted; nothing was written", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
