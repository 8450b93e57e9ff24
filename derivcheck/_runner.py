"""Running many claims: in this process, or spread over worker processes.

On the CPU a check's cost is compiling its checkers, which takes one core per compile; a
2-core machine runs the catalog about twice as fast with two workers. The unit of work is
one claim in every requested dtype, so that its float32 and float64 runs share the compiled
float64 reference. Workers are spawned (not forked: JAX is multithreaded), load the parent's
catalogs, find the claim by id, and return its results; verdicts do not depend on which process ran
them, since every input comes from the seed and profile.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
import signal
import threading
from collections.abc import Callable, Sequence

from derivcheck.catalog import active_sources
from derivcheck.claims import Claim
from derivcheck.results import Result

__all__ = ["compare_devices", "default_jobs", "run_claims", "use_compile_cache", "verify_claims"]


def default_jobs(platform: str) -> int:
    """Worker processes by default: one per usable core on the CPU, else one.

    On an accelerator the device, not the host's cores, runs the checks, and several
    processes would each claim its memory.
    """
    if platform != "cpu":
        return 1
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:  # not on Linux
        return max(os.cpu_count() or 1, 1)


def _verify_one(claim: Claim, dtypes: Sequence[str], options: dict) -> list[Result]:
    from derivcheck._verify import verify

    options = dict(options)
    device, seed = options.pop("device", None), options.pop("seed", 0)
    devices = options.pop("devices", None) or [device]
    seeds = options.pop("seeds", None) or [seed]
    only = options.pop("only", None)
    return [verify(claim, dtype=dtype, device=device, seed=seed, **options)
            for seed in seeds for dtype in dtypes for device in devices
            if only is None or (claim.id, dtype, seed) in only]


def use_compile_cache(directory: str | None) -> None:
    """Keep compiled checkers in ``directory``.

    The checker's stages go to the project's stage store (``directory/derivcheck-stages``,
    :mod:`derivcheck._stage_store`), keyed by what they are made from before the bound
    interpreter runs: a second run of the same claims on the same machine and versions
    loads them instead of tracing, interpreting, lowering and compiling. Everything else
    JAX compiles goes to JAX's persistent cache in ``directory``, keyed by the program, the
    compiler options and the versions. Every compile is kept (a checker compiles in a
    fraction of JAX's default one-second threshold); entries of both are written whole
    (:mod:`derivcheck._compile_cache`), so processes sharing them never read half of one.
    """
    if directory is None:
        return
    import jax

    from derivcheck._compile_cache import install, ready_to_load
    from derivcheck._stage_store import STAGES
    from derivcheck._stage_store import configure as configure_stage_store

    if not ready_to_load():  # loaded executables could crash the process: compile instead
        return
    install()

    jax.config.update("jax_compilation_cache_dir", directory)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    configure_stage_store(os.path.join(directory, STAGES))


def _worker_init(cache_dir: str | None, catalogs: tuple[str, ...]) -> None:
    # Ctrl-C reaches the whole process group: the parent alone handles it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from derivcheck._config import for_this_process
    from derivcheck.catalog import use

    for_this_process()
    use_compile_cache(cache_dir)
    use(catalogs)  # the parent's catalogs: a user's claims are found by id here too


def _selftest_one(claim: Claim, dtypes: Sequence[str], options: dict) -> list:
    from derivcheck._selftest import selftest_claim

    options = dict(options)
    only = options.pop("only", None)
    return selftest_claim(claim, [d for d in dtypes if only is None or (claim.id, d, 0) in only], **options)


_TASKS: dict[str, Callable[[Claim, Sequence[str], dict], list]] = {"verify": _verify_one, "selftest": _selftest_one}


def _worker_run(task: str, claim_id: str, dtypes: Sequence[str], options: dict) -> list:
    from derivcheck.catalog import catalog

    (claim,) = (c for c in catalog() if c.id == claim_id)
    return _TASKS[task](claim, dtypes, options)


def estimated_cost(claim: Claim) -> int:
    """A claim's relative cost where none was measured (:mod:`derivcheck._shards`)."""
    # Compile time grows with the program: networks have the most arguments, and a
    # conditional claim is searched twice (inside and outside its condition).
    return len(claim.domain.args) * (2 if claim.outside is not None else 1)


def run_claims(
    task: str,
    claims: Sequence[Claim],
    dtypes: Sequence[str],
    *,
    jobs: int,
    compile_cache: str | None = None,
    on_start: Callable[[Claim], None] = lambda claim: None,  # called in this process only
    on_done: Callable[[Claim, list], None] = lambda claim, records: None,
    **options,
) -> list:
    """Run ``task`` (``verify`` or ``selftest``) on every claim in every dtype.

    The records come back in the order of ``claims``. With ``jobs > 1`` the claims must be
    claims of the catalogs in use (:func:`derivcheck.catalog.use`; the workers load the same
    ones and look the claims up by id); an error in any claim is raised here,
    and the remaining work is cancelled. ``compile_cache``: see :func:`use_compile_cache`.
    ``only``: the (claim id, dtype, seed) units to run, where not all (a shard's part).
    """
    use_compile_cache(compile_cache)
    work = _TASKS[task]
    if jobs <= 1 or len(claims) <= 1:
        records = []
        for claim in claims:
            on_start(claim)
            done = work(claim, dtypes, options)
            on_done(claim, done)
            records.extend(done)
        return records

    by_claim: dict[str, list] = {}
    stopped = _stop_on_sigterm()
    context = multiprocessing.get_context("spawn")
    pool = concurrent.futures.ProcessPoolExecutor(
        max_workers=min(jobs, len(claims)), mp_context=context, initializer=_worker_init,
        initargs=(compile_cache, active_sources()),
    )
    try:
        # Largest first, so that no big claim is left to run alone at the end.
        ordered = sorted(claims, key=estimated_cost, reverse=True)
        futures = {pool.submit(_worker_run, task, claim.id, tuple(dtypes), options): claim for claim in ordered}
        for future in concurrent.futures.as_completed(futures):
            claim = futures[future]
            by_claim[claim.id] = future.result()
            on_done(claim, by_claim[claim.id])
    except BaseException:
        # Stop the workers now (the executor keeps them private; shutdown forgets them).
        workers = list((getattr(pool, "_processes", None) or {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        for process in workers:
            process.terminate()
        raise
    finally:
        stopped()
    pool.shutdown()
    return [record for claim in claims for record in by_claim[claim.id]]


class Terminated(KeyboardInterrupt):
    """SIGTERM during a run with workers: handled as Ctrl-C is, the workers stopped."""


def _stop_on_sigterm() -> Callable[[], None]:
    """Turn SIGTERM (a CI job's timeout, ``kill``) into an exit that stops the workers:
    by default it ends this process at once and leaves them computing, orphaned. Returns
    what restores the previous handler (a no-op off the main thread, where signals are
    not for us to handle)."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def stop(signum, frame):
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, stop)
    return lambda: signal.signal(signal.SIGTERM, previous)


def verify_claims(claims: Sequence[Claim], dtypes: Sequence[str], **kwargs) -> list[Result]:
    """Verify every claim in every dtype (:func:`run_claims` with ``verify``).

    Options go to :func:`derivcheck.verify` (``examples``, ``seed``, ``profile``,
    ``precision``, ``device`` given by name), except ``devices``: a list of device names
    (``cpu:0``, ``cpu:1``), each of which checks every claim; and ``seeds``: several seeds,
    each a full check (one process compiles the checkers once for all of them).
    """
    return run_claims("verify", claims, dtypes, **kwargs)


def compare_devices(results: Sequence[Result]) -> list[dict]:
    """The same claim and dtype on several devices, compared.

    The inputs come from the seed and profile alone, so every device checks the same
    points. Devices agree when they reach the same verdict, decide and fail the same
    number of points and shrink to the same counterexample; the spread of the worst
    error-to-tolerance ratio is reported beside it (identical devices give 0).
    """
    # Seeds apart: another seed checks other points, so only one seed's runs can agree.
    groups: dict[tuple[str, str, int], list[Result]] = {}
    for result in results:
        groups.setdefault((result.id, result.dtype, result.seed), []).append(result)
    rows = []
    for (claim_id, dtype, seed), members in groups.items():
        if len(members) < 2:
            continue

        def summary(r: Result):
            inputs = r.counterexample["inputs"] if r.counterexample else None
            return r.verdict, r.points, r.detail, inputs

        first = summary(members[0])
        differing = [r.device for r in members[1:] if summary(r) != first]
        ratios = [r.max_error_ratio for r in members]
        rows.append({
            "id": claim_id, "dtype": dtype, "seed": seed, "devices": [r.device for r in members],
            "agree": not differing, "differing": differing,
            "verdicts": sorted({r.verdict for r in members}),
            # Equal ratios spread by 0, infinite ones too (inf - inf would be NaN).
            "error_ratio_spread": 0.0 if len(set(ratios)) == 1 else max(ratios) - min(ratios),
        })
    return rows
