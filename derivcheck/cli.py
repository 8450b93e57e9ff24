"""The ``derivcheck`` command: ``list``, ``verify``, ``report``, ``selftest``, ``merge`` and ``bench``.

Exit codes: 0 every verdict as expected; 1 some verdict not as expected (the gate
fails); 2 a usage error (unknown claim, document, dtype, device or profile; a bad number;
an unwritable output), reported in one line.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
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


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


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


def _sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected sizes like 16,64,256, got {text!r}") from None
    if len(sizes) < 2 or min(sizes) < 1 or list(sizes) != sorted(set(sizes)):
        raise argparse.ArgumentTypeError(f"expected at least two increasing sizes >= 1, got {text!r}")
    return sizes


def _mesh(text: str) -> int | str:
    if text == "all":
        return text
    try:
        return _positive(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"expected a number of devices >= 1 or 'all', got {text!r}") from None


def _shard(text: str):
    from derivcheck._shards import parse_shard

    try:
        return parse_shard(text)
    except InvalidArgument as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


_SHARD_HELP = ("run shard K of N: a deterministic part of the (claim, dtype, seed) work, balanced by "
               "measured cost; combine the parts with derivcheck merge")

_DOCUMENT_HELP = "document key, seed file name or number (e.g. 000)"
_DEVICE_HELP = "cpu, gpu or tpu, optionally with an index (cpu:1); default: JAX's default device"


_CATALOG_HELP = ("a document's catalog: a .py file or a dotted module defining DOCUMENT and CLAIMS "
                 "(repeatable; default: the bundled documents)")


def _add_catalog(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--catalog", action="append", metavar="PATH_OR_MODULE", help=_CATALOG_HELP)
    parser.add_argument("--all-catalogs", action="store_true",
                        help="the bundled documents, every catalog installed packages register "
                             "(entry points 'derivcheck.catalogs') and any --catalog")


def _add_selection(parser: argparse.ArgumentParser, *, dtype_default: str | None = "all") -> None:
    """The options every checking command shares: which claims, in which dtypes."""
    _add_catalog(parser)
    parser.add_argument("--no-independence-check", action="store_true",
                        help="run a --catalog whose closed forms call autodiff or their reference "
                             "(derivcheck.independence; refused by default)")
    parser.add_argument("--document", help=_DOCUMENT_HELP)
    parser.add_argument("--claim", metavar="GLOB", help="claim ids matching this glob")
    parser.add_argument("--dtype", choices=(*DTYPE_NAMES, "all", "every"), default=dtype_default,
                        help="all: float32 and float64 (the gate); every: all four")


def _add_shard(parser: argparse.ArgumentParser, help_text: str = _SHARD_HELP) -> None:
    parser.add_argument("--shard", type=_shard, metavar="K/N", help=help_text)


def _add_placement(parser: argparse.ArgumentParser) -> None:
    """Where checks run: the device, a mesh over the batch, and (for testing) the truth's device."""
    parser.add_argument("--device", metavar="DEVICE", help=_DEVICE_HELP)
    parser.add_argument("--mesh", type=_mesh, default=1, metavar="N|all",
                        help="shard every batch over N devices of the platform from --device on (all: every one)")
    parser.add_argument("--reference-device", metavar="DEVICE", default=os.environ.get("DERIVCHECK_REFERENCE_DEVICE"),
                        help="for testing: run the float64 reference on this device (default: the checked "
                             "device if it computes float64, else the host CPU; $DERIVCHECK_REFERENCE_DEVICE)")


def _placement(args):
    """The placement the options ask for, checked here so that a bad one fails in one line."""
    from derivcheck._placement import placement_for

    return placement_for(args.device, mesh=args.mesh, reference_device=args.reference_device)


#: The checked dtypes, by name; ``all`` is the gate's pair, ``every`` all four (README,
#: "Devices and precision": bfloat16 and float16 are opted into, not gated by default).
DTYPE_NAMES = ("float32", "float64", "bfloat16", "float16")


def _dtypes(choice: str | None) -> tuple[str, ...]:
    if choice == "every":
        return DTYPE_NAMES
    return ("float32", "float64") if choice in (None, "all") else (choice,)


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="derivcheck", description="Verify hand-derived gradients against JAX autodiff.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    lister = commands.add_parser("list", help="list the claims of the catalog")
    _add_catalog(lister)
    lister.add_argument("--document", help=_DOCUMENT_HELP)
    lister.add_argument("--format", choices=("table", "json"), default="table")

    verify = commands.add_parser("verify", help="check claims and gate on the verdicts")
    _add_selection(verify)
    verify.add_argument("--examples", type=_non_negative, help="Hypothesis examples per claim and dtype")
    verify.add_argument("--seed", type=_non_negative, default=0)
    verify.add_argument("--seeds", type=_positive, default=1, metavar="N",
                        help="check with N seeds, --seed to --seed + N - 1 (false-alarm runs)")
    verify.add_argument("--profile", choices=("ci", "dev", "thorough"), default="ci")
    _add_placement(verify)
    verify.add_argument("--all-devices", action="store_true",
                        help="check on every device of the platform and compare the results")
    verify.add_argument("--precision", choices=("highest", "default"), default="highest",
                        help="float32 matmul precision: full (default) or the backend's default")
    verify.add_argument("--compile-cache", metavar="DIR", default=os.environ.get("DERIVCHECK_COMPILE_CACHE"),
                        help="keep compiled checkers here for the next run (default: $DERIVCHECK_COMPILE_CACHE)")
    verify.add_argument("--jobs", type=_positive, metavar="N",
                        help="worker processes (default: one per core on the CPU, 1 on an accelerator)")
    _add_shard(verify)
    verify.add_argument("--format", choices=("table", "json"), default="table")
    verify.add_argument("--junit", metavar="PATH", help="also write JUnit XML here")
    _add_prove_options(verify)

    report = commands.add_parser("report", help="write per-document HTML and Markdown reports of the verdicts")
    _add_selection(report, dtype_default=None)  # None: not given, which --from needs to know
    report.add_argument("--out", metavar="DIR", default="reports", help="where to write (default: reports/)")
    report.add_argument("--from", dest="from_run", metavar="RUN.json",
                        help="draw the reports from a saved run (derivcheck verify --format json, or a run.json) "
                             "instead of checking")
    report.add_argument("--examples", type=_non_negative, help="Hypothesis examples per claim and dtype")
    report.add_argument("--seed", type=_non_negative, default=None, help="default 0")
    report.add_argument("--profile", choices=("ci", "dev", "thorough"), default=None, help="default ci")
    _add_placement(report)
    report.add_argument("--precision", choices=("highest", "default"), default=None, help="default highest")
    report.add_argument("--jobs", type=_positive, metavar="N",
                        help="worker processes (default: one per core on the CPU, 1 on an accelerator)")
    _add_prove_options(report)
    _add_shard(report, "run shard K of N and write only its results (OUT/run-K-of-N.json); derivcheck merge "
                       "combines the shards, report --from draws the reports")

    selftest = commands.add_parser("selftest", help="plant faults in every closed form and report the kill rates")
    _add_selection(selftest)
    selftest.add_argument("--operator", action="append", metavar="NAME",
                          help="only this mutation operator (repeatable; default: all)")
    selftest.add_argument("--jobs", type=_positive, metavar="N", help="worker processes (default: one per core)")
    _add_shard(selftest)
    selftest.add_argument("--format", choices=("table", "json"), default="table")

    prove = commands.add_parser("prove", help="exact verdicts: prove or disprove claims symbolically (SymPy)")
    _add_catalog(prove)
    prove.add_argument("--document", help=_DOCUMENT_HELP)
    prove.add_argument("--claim", metavar="GLOB", help="claim ids matching this glob")
    prove.add_argument("--timeout", type=_positive_float, default=None, metavar="S",
                       help="seconds per claim, all its sizes and branches (default 30)")
    prove.add_argument("--seed", type=_non_negative, default=0, help="fixes the points a disproof tries")
    prove.add_argument("--jobs", type=_positive, metavar="N", help="worker processes (default: one per core)")
    prove.add_argument("--format", choices=("table", "json"), default="table")

    merge = commands.add_parser("merge", help="combine the JSON outputs of --shard K/N runs into one run")
    merge.add_argument("runs", nargs="+", metavar="RUN.json", help="every shard's output (verify or selftest "
                                                                   "--format json, or report's run-K-of-N.json)")
    merge.add_argument("--junit", metavar="PATH", help="also write JUnit XML of the merged run here")
    merge.add_argument("--format", choices=("table", "json"), default="table")

    bench = commands.add_parser("bench", help="measure checking throughput, compile time and closed-form cost")
    _add_selection(bench)
    bench.add_argument("--device", metavar="DEVICE", help=_DEVICE_HELP)
    bench.add_argument("--section", choices=("compile", "throughput", "scaling", "all"), default="all",
                       help="compile: where a cold gate's time goes, per claim and phase (all: every section)")
    bench.add_argument("--compile-cache", metavar="DIR",
                       help="the compile section verifies with this cache, as verify --compile-cache does "
                            "(empty: a cold run that fills it; filled: a warm run)")
    bench.add_argument("--points", type=_positive, default=128, help="points per batch (batched checker)")
    bench.add_argument("--batches", type=_positive, default=4, help="timed batches per claim and dtype")
    bench.add_argument("--loop-points", type=_positive, default=64, help="points per claim for the per-point loop")
    bench.add_argument("--check-grads-points", type=_positive, default=8, help="points per claim for check_grads")
    bench.add_argument("--sizes", type=_sizes, help="comma-separated sizes for the scaling cases")
    bench.add_argument("--format", choices=("table", "json"), default="table")
    return parser


def _add_prove_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--prove", action="store_true",
                        help="also prove or disprove each claim exactly (SymPy; next to the numerical verdict)")
    parser.add_argument("--prove-timeout", type=_positive_float, default=None, metavar="S",
                        help="with --prove: seconds per claim (default 30)")


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return value


def _proofs(claims, timeout_s, jobs, seed=0):
    """Every claim's exact verdict, with a progress line per claim."""
    from derivcheck._prove import DEFAULT_TIMEOUT_S, prove_claims

    progress = _Progress(len(claims))
    return prove_claims(claims, timeout_s=timeout_s or DEFAULT_TIMEOUT_S, jobs=jobs, seed=seed,
                        on_done=lambda claim, proof: progress.finish(f"{claim.id} [exact]", proof.verdict,
                                                                     proof.seconds))


def _cpu_jobs() -> int:
    """Proofs run on the host CPU (SymPy), whatever the checked device: one worker a core."""
    from derivcheck._runner import default_jobs

    return default_jobs("cpu")


def _with_proofs(results, proofs):
    import dataclasses

    return [dataclasses.replace(r, proof=proofs[r.id].to_json()) if r.id in proofs else r for r in results]


def _check_writable(path: str) -> None:
    parent = Path(path).resolve().parent
    if not parent.is_dir():
        raise UsageError(f"cannot write {path}: directory {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise UsageError(f"cannot write {path}: directory {parent} is not writable")


def _check_cache_dir(path: str) -> None:
    directory = Path(path)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot use {path} as the compile cache: {exc.strerror}") from None
    if not os.access(directory, os.W_OK):
        raise UsageError(f"cannot use {path} as the compile cache: not writable")


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


def _check_independence() -> None:
    """Refuse a user's catalog whose closed forms are computed by their truth (DESIGN.md 1)."""
    from derivcheck.catalog import catalog, source_of
    from derivcheck.independence import problems

    for claim in catalog():
        source = source_of(claim.document)
        found = problems(claim) if source is not None else ()
        if found:
            raise UsageError(f"catalog {source}: claim {claim.id}: {found[0]}: it would be checked against itself "
                             "(--no-independence-check runs it anyway)")


def _share(claims, dtypes, seeds, shard):
    """This shard's part of the run: its claims, its units, and what its output records."""
    from derivcheck._shards import partition, shard_environment, unit_costs, units_of

    if shard is None:
        return list(claims), None, {}
    units = units_of(claims, dtypes, seeds)
    mine = partition(units, unit_costs(claims, units), shard.count)[shard.index - 1]
    ids = {u[0] for u in mine}
    return [c for c in claims if c.id in ids], set(mine), shard_environment(shard, mine, units)


def _run_environment(device, **entries):
    from derivcheck.results import environment

    return environment(device) | entries


def _cmd_list(args) -> int:
    from derivcheck._output import claims_json, claims_table
    from derivcheck.catalog import select

    claims = select(document=args.document)
    print(claims_json(claims) if args.format == "json" else claims_table(claims))
    return EXIT_OK


def _cmd_verify(args) -> int:
    from derivcheck._checker import ClaimError
    from derivcheck._output import results_json, results_table, write_junit
    from derivcheck._placement import devices_of
    from derivcheck._runner import compare_devices, default_jobs, verify_claims
    from derivcheck.catalog import select

    if args.junit:
        _check_writable(args.junit)
    if args.compile_cache:
        _check_cache_dir(args.compile_cache)
    claims = select(document=args.document, pattern=args.claim)
    if args.all_devices and args.mesh != 1:
        raise UsageError("--all-devices checks on each device in turn; --mesh shares each batch: choose one")
    placement = _placement(args)
    device = placement.device
    dtypes = _dtypes(args.dtype)
    devices = [f"{d.platform}:{k}" for k, d in enumerate(devices_of(device.platform))] if args.all_devices \
        else [args.device]
    seeds = list(range(args.seed, args.seed + args.seeds))
    claims, only, shard_env = _share(claims, dtypes, seeds, args.shard)
    progress = _Progress((len(only) if only is not None else len(claims) * len(dtypes) * args.seeds) * len(devices))
    jobs = args.jobs or default_jobs(device.platform)
    start = time.perf_counter()

    def started(claim) -> None:
        progress.start(claim.id)

    def done(claim, results) -> None:
        for result in results:
            where = f" {result.device.split()[0]}" if len(devices) > 1 else ""
            where += f" seed {result.seed}" if args.seeds > 1 else ""
            progress.finish(f"{claim.id} [{result.dtype}]{where}", result.verdict, result.elapsed_s)

    try:
        results = verify_claims(claims, dtypes, jobs=jobs, compile_cache=args.compile_cache,
                                on_start=started, on_done=done, examples=args.examples, seed=args.seed,
                                profile=args.profile, devices=devices, precision=args.precision,
                                seeds=seeds, mesh=args.mesh, reference_device=args.reference_device, only=only)
    except ClaimError as exc:
        raise UsageError(str(exc)) from None
    env = _run_environment(device, kind="verify", seed=args.seed, seeds=args.seeds, profile=args.profile,
                           examples=args.examples, matmul_precision=args.precision, mesh=placement.width,
                           reference_device=args.reference_device, jobs=jobs,
                           wall_time_s=round(time.perf_counter() - start, 3), **shard_env)
    comparison = compare_devices(results)
    proofs = _proofs(claims, args.prove_timeout, jobs, args.seed) if args.prove else {}
    results = _with_proofs(results, proofs)
    if args.format == "json":
        print(results_json(results, env, comparison))
    else:
        print(results_table(results, comparison))
        if proofs:
            from derivcheck._output import proofs_table

            print("\n" + proofs_table(claims, proofs))
    if args.junit:
        write_junit(args.junit, results, env)
    gate = all(r.passed for r in results) and all(row["agree"] for row in comparison)
    return EXIT_OK if gate and not _contradicted(claims, proofs) else EXIT_GATE_FAILED


def _contradicted(claims, proofs) -> list[str]:
    """Claims whose exact verdict says the opposite of what they are declared to be."""
    from derivcheck._prove import contradicts

    return [c.id for c in claims if c.id in proofs and contradicts(c, proofs[c.id])]


def _cmd_prove(args) -> int:
    from derivcheck._output import proofs_json, proofs_table
    from derivcheck.catalog import select

    claims = select(document=args.document, pattern=args.claim)
    start = time.perf_counter()
    proofs = _proofs(claims, args.timeout, args.jobs or _cpu_jobs(), args.seed)
    if args.format == "json":
        print(proofs_json(claims, proofs, {"kind": "prove", "seed": args.seed, "timeout_s": args.timeout or 30.0,
                                           "wall_time_s": round(time.perf_counter() - start, 3)}))
    else:
        print(proofs_table(claims, proofs))
    return EXIT_GATE_FAILED if _contradicted(claims, proofs) else EXIT_OK


def _cmd_report(args) -> int:
    from derivcheck._checker import ClaimError
    from derivcheck._output import results_json, write_atomic
    from derivcheck._report import load_run, write_reports
    from derivcheck._runner import default_jobs, verify_claims
    from derivcheck.catalog import catalog, select

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {args.out}: exists and is not a directory")
    _check_writable(str(out / "index.html") if out.is_dir() else args.out)
    chosen = select(document=args.document, pattern=args.claim)
    if args.from_run:
        run_options = {"--dtype": args.dtype, "--examples": args.examples, "--seed": args.seed,
                       "--profile": args.profile, "--device": args.device, "--precision": args.precision,
                       "--jobs": args.jobs, "--mesh": args.mesh if args.mesh != 1 else None,
                       "--shard": args.shard}
        given = [name for name, value in run_options.items() if value is not None]
        if given:
            raise UsageError(f"--from reads a saved run; {', '.join(given)} would need a new one")
        env, results = load_run(args.from_run)
        known = {c.id for c in catalog()}
        unknown = sorted({r.id for r in results} - known)
        if unknown:
            raise UsageError(f"--from {args.from_run}: claims not in this catalog: {', '.join(unknown[:3])}")
        wanted = {c.id for c in chosen}
        results = [r for r in results if r.id in wanted]
        if not results:
            raise UsageError(f"--from {args.from_run}: no results for the claims selected")
    else:
        placement = _placement(args)
        device = placement.device
        dtypes = _dtypes(args.dtype)
        seed, profile, precision = args.seed or 0, args.profile or "ci", args.precision or "highest"
        to_run, only, shard_env = _share(chosen, dtypes, [seed], args.shard)
        progress = _Progress(len(only) if only is not None else len(chosen) * len(dtypes))
        start = time.perf_counter()

        def done(claim, results) -> None:
            for result in results:
                progress.finish(f"{claim.id} [{result.dtype}]", result.verdict, result.elapsed_s)

        jobs = args.jobs or default_jobs(device.platform)
        try:
            results = verify_claims(to_run, dtypes, jobs=jobs, on_start=lambda claim: progress.start(claim.id),
                                    on_done=done, examples=args.examples, seed=seed, profile=profile,
                                    devices=[args.device], precision=precision, seeds=[seed], mesh=args.mesh,
                                    reference_device=args.reference_device, only=only)
        except ClaimError as exc:
            raise UsageError(str(exc)) from None
        env = _run_environment(device, kind="verify", seed=seed, seeds=1, profile=profile, examples=args.examples,
                               matmul_precision=precision, mesh=placement.width,
                               reference_device=args.reference_device, jobs=jobs,
                               wall_time_s=round(time.perf_counter() - start, 3), **shard_env)
        if args.shard is not None:  # a part of the run: its results only, for derivcheck merge
            out.mkdir(parents=True, exist_ok=True)
            path = out / f"run-{args.shard.index}-of-{args.shard.count}.json"
            write_atomic(path, results_json(results, env) + "\n")
            failures = sum(not r.passed for r in results)
            print(f"wrote {path} (shard {args.shard}, {_count(len(results), 'result')}"
                  + (f", {_count(failures, 'failure')}" if failures else "")
                  + "); derivcheck merge every shard's file, then derivcheck report --from the merged run")
            return EXIT_OK if not failures else EXIT_GATE_FAILED
    if args.prove:
        proved = [c for c in chosen if c.id in {r.id for r in results}]
        results = _with_proofs(results, _proofs(proved, args.prove_timeout, args.jobs or _cpu_jobs()))
    checked = {r.id for r in results}
    documents = {c.document.key for c in chosen if c.id in checked}
    claims = [c for c in chosen if c.document.key in documents]
    written = write_reports(results, env, claims, out)
    failures = sum(not r.passed for r in results)
    print(f"wrote {len(written)} files to {out}/ ({_count(len(documents), 'document')}, "
          f"{_count(len(results), 'result')}"
          + (f", {_count(failures, 'failure')}" if failures else "") + f"); open {out / 'index.html'}")
    return EXIT_OK if not failures else EXIT_GATE_FAILED


def _cmd_selftest(args) -> int:
    from derivcheck._output import selftest_json, selftest_table
    from derivcheck._runner import default_jobs, run_claims
    from derivcheck._selftest import kill_totals
    from derivcheck.catalog import select
    from derivcheck.mutants import MUTANTS

    operators = args.operator or list(MUTANTS)
    unknown = [name for name in operators if name not in MUTANTS]
    if unknown:
        raise UsageError(f"unknown operator {unknown[0]!r}; choose from: {', '.join(MUTANTS)}")
    claims = [c for c in select(document=args.document, pattern=args.claim) if not c.printed_wrong]
    if not claims:
        raise UsageError("only errata and typos match: their closed forms are already wrong, and are not mutated")
    dtypes = _dtypes(args.dtype)
    claims, only, shard_env = _share(claims, dtypes, [0], args.shard)
    progress = _Progress(len(claims))
    start = time.perf_counter()

    def done(claim, records) -> None:
        killed, counted, _ = kill_totals(records)
        progress.finish(claim.id, f"{killed}/{counted} killed", time.perf_counter() - start)

    jobs = args.jobs or default_jobs("cpu")
    records = run_claims("selftest", claims, dtypes, jobs=jobs, on_done=done, operators=tuple(operators), only=only)
    env = _run_environment(_placement_device(), kind="selftest", seed=0, seeds=1, profile="ci", examples=0,
                           operators=sorted(operators), jobs=jobs, wall_time_s=round(time.perf_counter() - start, 3),
                           **shard_env)
    print(selftest_json(records, env) if args.format == "json" else selftest_table(records))
    return EXIT_OK if all(r.ok for r in records) else EXIT_GATE_FAILED


def _placement_device():
    from derivcheck._placement import resolve_device

    return resolve_device(None)


def _cmd_merge(args) -> int:
    from derivcheck._output import results_json, results_table, selftest_json, selftest_table, write_junit
    from derivcheck._runner import compare_devices
    from derivcheck._shards import load_output, merge_runs

    if args.junit:
        _check_writable(args.junit)
    env, records = merge_runs([(path, *load_output(path)) for path in args.runs])
    if env.get("kind") == "selftest":
        if args.junit:
            raise UsageError("--junit: JUnit XML is written for verify runs, not for a self-test")
        print(selftest_json(records, env) if args.format == "json" else selftest_table(records))
        return EXIT_OK if all(r.ok for r in records) else EXIT_GATE_FAILED
    comparison = compare_devices(records)
    print(results_json(records, env, comparison) if args.format == "json" else results_table(records, comparison))
    if args.junit:
        write_junit(args.junit, records, env)
    gate = all(r.passed for r in records) and all(row["agree"] for row in comparison)
    return EXIT_OK if gate else EXIT_GATE_FAILED


def _cmd_bench(args) -> int:
    from derivcheck import _stage_store

    # Cold unless --compile-cache is given: a store configured before (the tests') is not used.
    with contextlib.nullcontext() if args.compile_cache else _stage_store.configured(None):
        return _bench_sections(args)


def _bench_sections(args) -> int:
    from derivcheck import _bench
    from derivcheck._output import bench_json, bench_tables
    from derivcheck._placement import resolve_device
    from derivcheck.catalog import catalog, select
    from derivcheck.results import environment

    device = resolve_device(args.device)
    dtypes = _dtypes(args.dtype)
    if args.compile_cache:
        from derivcheck._runner import use_compile_cache

        _check_cache_dir(args.compile_cache)
        use_compile_cache(args.compile_cache)
    rows, events, scaling, parts, start = [], None, [], [], {}
    if args.section in ("compile", "all"):  # first: cold, as a gate starts
        claims = select(document=args.document, pattern=args.claim)
        progress = _Progress(len(claims) * len(dtypes))

        def part_done(row) -> None:
            progress.finish(f"{row.id} [{row.dtype}]", "timed", row.wall_s)

        parts = _bench.breakdown(claims, dtypes, device, on_row=part_done)
        start = _bench.start_up()
    if args.section in ("throughput", "all"):
        claims = select(document=args.document, pattern=args.claim)
        progress = _Progress(len(claims) * len(dtypes))

        def row_done(row) -> None:
            progress.finish(f"{row.id} [{row.dtype}]", "timed", row.batched_compile_s + row.batched_s
                            + row.loop_s + row.check_grads_s)

        with _bench.CompileEvents() as events:
            rows = _bench.throughput(claims, dtypes, device, points=args.points, batches=args.batches,
                                     loop_points=args.loop_points, check_grads_points=args.check_grads_points,
                                     seed=0, on_row=row_done)
    if args.section in ("scaling", "all"):
        chosen = catalog() if args.document is None and args.claim is None else select(args.document, args.claim)
        by_id = {c.id: c for c in chosen}

        def scaled(row) -> None:
            print(f"scaled {row['id']}", file=sys.stderr, flush=True)

        scaling = _bench.scaling(by_id, device, sizes_override=args.sizes, on_row=scaled)
    env = environment(device)
    print(bench_json(rows, events, scaling, env, parts, start) if args.format == "json"
          else bench_tables(rows, events, scaling, parts, start))
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    try:
        from derivcheck._config import for_this_process

        for_this_process()  # the CLI owns its process
        args = _build_parser().parse_args(argv)
        from derivcheck.catalog import BUNDLED, registered, use

        given = getattr(args, "catalog", None)
        sources = [*BUNDLED, *registered(), *(given or [])] if getattr(args, "all_catalogs", False) else given
        use(sources)  # every catalog loads and is checked before anything runs
        if hasattr(args, "no_independence_check") and not args.no_independence_check:
            _check_independence()
        commands = {"list": _cmd_list, "verify": _cmd_verify, "report": _cmd_report, "selftest": _cmd_selftest,
                    "merge": _cmd_merge, "bench": _cmd_bench, "prove": _cmd_prove}
        return commands[args.command](args)
    except (UsageError, InvalidArgument) as exc:
        print(f"derivcheck: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt as exc:
        terminated = type(exc).__name__ == "Terminated"  # derivcheck._runner's, not imported for this
        print(f"derivcheck: {'terminated' if terminated else 'interrupted'}; nothing was written", file=sys.stderr)
        return 128 + (signal.SIGTERM if terminated else signal.SIGINT)


if __name__ == "__main__":
    sys.exit(main())
