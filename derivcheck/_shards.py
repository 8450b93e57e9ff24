"""Splitting a run over CI jobs (``--shard K/N``) and putting it back together (``merge``).

The work of a run is a list of units, one per (claim, dtype, seed). Every shard computes
the same partition of all of them (:func:`partition`) and runs its own part; the partition
depends on the units and the cost table only, so N machines agree on it without talking.
Units are dealt largest first to the least loaded shard (the longest-processing-time
rule: within 4/3 of the best possible makespan), by the seconds each took in a measured
cold run (:data:`COSTS_FILE`); a unit the table does not know (a user's claim) is costed
from its claim's size, at the table's median rate.
"""

from __future__ import annotations

import hashlib
import json
import statistics
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from derivcheck.claims import Claim
from derivcheck.errors import InvalidArgument
from derivcheck.results import Result

__all__ = ["Shard", "merge_runs", "parse_shard", "partition", "shard_environment", "units_of"]

#: Seconds per (claim, dtype) of a cold ``derivcheck verify`` on the 2-core CPU, from its
#: results' ``elapsed_s``; refreshed with ``python -m derivcheck._shards reports/run.json``.
COSTS_FILE = "_costs.json"

Unit = tuple[str, str, int]  # (claim id, dtype, seed)


class Shard(tuple):
    """``(index, count)``, 1-based: shard K of N."""

    __slots__ = ()

    def __new__(cls, index: int, count: int):
        return super().__new__(cls, (index, count))

    @property
    def index(self) -> int:
        return self[0]

    @property
    def count(self) -> int:
        return self[1]

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse_shard(text: str) -> Shard:
    """``"2/3"`` -> ``Shard(2, 3)``; :class:`InvalidArgument` unless 1 <= K <= N."""
    k, sep, n = text.partition("/")
    if not sep or not k.isdigit() or not n.isdigit() or not 1 <= int(k) <= int(n):
        raise InvalidArgument(f"expected a shard K/N with 1 <= K <= N (like 2/3), got {text!r}")
    return Shard(int(k), int(n))


def units_of(claims: Sequence[Claim], dtypes: Sequence[str], seeds: Sequence[int]) -> list[Unit]:
    """Every unit of work of a run, in the run's order."""
    return [(c.id, d, s) for c in claims for s in seeds for d in dtypes]


def _measured() -> dict[str, float]:
    text = resources.files("derivcheck").joinpath(COSTS_FILE).read_text(encoding="utf-8")
    return json.loads(text)["seconds"]


def unit_costs(claims: Sequence[Claim], units: Sequence[Unit]) -> dict[Unit, float]:
    """Seconds each unit is expected to take: measured, else from the claim's size."""
    from derivcheck._runner import estimated_cost

    measured = _measured()
    by_id = {c.id: c for c in claims}
    rate = statistics.median(measured.values())  # seconds per unit of estimated cost
    return {u: measured.get(f"{u[0]}[{u[1]}]", rate * estimated_cost(by_id[u[0]])) for u in units}


def partition(units: Sequence[Unit], costs: dict[Unit, float], count: int) -> list[list[Unit]]:
    """The units in ``count`` shares of nearly equal cost, each in the run's order."""
    loads = [0.0] * count
    shares: list[list[Unit]] = [[] for _ in range(count)]
    for unit in sorted(units, key=lambda u: (-costs[u], u)):
        k = min(range(count), key=lambda i: (loads[i], i))
        shares[k].append(unit)
        loads[k] += costs[unit]
    order = {u: i for i, u in enumerate(units)}
    return [sorted(share, key=order.__getitem__) for share in shares]


def digest(units: Sequence[Unit]) -> str:
    """What a run covers, as a short hash: shards of one run share it."""
    return hashlib.sha256(json.dumps(sorted(units)).encode()).hexdigest()[:16]


def shard_environment(shard: Shard, mine: Sequence[Unit], units: Sequence[Unit]) -> dict[str, Any]:
    """What a shard's output records of its place in the whole run: its units, each with its
    position in the run's order (so that merged results come back in that order)."""
    position = {u: i for i, u in enumerate(units)}
    return {"shard": {"index": shard.index, "count": shard.count, "total_units": len(units),
                      "selection": digest(units), "units": [[*u, position[u]] for u in mine]}}


#: Environment entries that must agree between the shards of one run.
MUST_AGREE = ("derivcheck", "jax", "jaxlib", "numpy", "hypothesis", "python", "platform", "seed", "seeds",
              "profile", "examples", "matmul_precision", "mesh", "reference_device")


def merge_runs(runs: Sequence[tuple[str, dict[str, Any], list]]) -> tuple[dict[str, Any], list]:
    """One run from the outputs of its shards: ``(path, environment, records)`` each.

    Raises :class:`InvalidArgument` (one line) for an output that is not a shard, shards
    of different runs (seeds, profile, versions, selection), a shard given twice or
    missing, or two shards that ran the same unit.
    """
    if not runs:
        raise InvalidArgument("merge needs the shard outputs to merge")
    first_path, first, _ = runs[0]
    seen: dict[int, str] = {}
    for path, env, _ in runs:
        shard = env.get("shard")
        if not isinstance(shard, dict):
            raise InvalidArgument(f"{path}: not the output of a shard (run with --shard K/N)")
        if env.get("kind") != first.get("kind"):
            raise InvalidArgument(f"{path} is a {env.get('kind')} output, {first_path} a {first.get('kind')} one")
        for key in ("count", "selection"):
            if shard.get(key) != first["shard"].get(key):
                raise InvalidArgument(f"{path}: a shard of another run (shard {key} {shard.get(key)!r}, "
                                      f"{first_path}'s {first['shard'].get(key)!r})")
        for key in MUST_AGREE:
            if env.get(key) != first.get(key):
                raise InvalidArgument(f"{path}: {key} {env.get(key)!r} differs from {first_path}'s "
                                      f"{first.get(key)!r}: not shards of one run")
        if shard["index"] in seen:
            raise InvalidArgument(f"shard {shard['index']}/{shard['count']} is given twice "
                                  f"({seen[shard['index']]}, {path})")
        seen[shard["index"]] = path
    count = first["shard"]["count"]
    missing = [k for k in range(1, count + 1) if k not in seen]
    if missing:
        raise InvalidArgument(f"shard {missing[0]}/{count} is missing" + (f" (and {len(missing) - 1} more)"
                                                                          if len(missing) > 1 else ""))
    position: dict[tuple, int] = {}
    for path, env, _ in runs:
        for *unit, at in env["shard"]["units"]:
            if tuple(unit) in position:
                raise InvalidArgument(f"{path} and another shard both ran {unit[0]} [{unit[1]}]: the shards overlap")
            position[tuple(unit)] = at
    if sorted(position.values()) != list(range(first["shard"]["total_units"])):
        raise InvalidArgument(f"the shards ran {len(position)} of the run's {first['shard']['total_units']} units")
    records, where = [], {}
    for path, _, part in runs:
        for record in part:
            key = _key(record)
            if key in where:
                raise InvalidArgument(f"{path} and {where[key]} both hold {key[0]} [{key[1]}]: the shards overlap")
            where[key] = path
            records.append(record)
    records.sort(key=lambda r: position.get(_unit(r), len(position)))
    env = {k: v for k, v in first.items() if k != "shard"}
    env["merged_shards"] = count
    env["wall_time_s"] = max(float(e.get("wall_time_s", 0.0)) for _, e, _ in runs)  # the shards ran side by side
    return env, records


def _unit(record) -> Unit:
    if isinstance(record, Result):
        return record.id, record.dtype, record.seed
    return record.claim, record.dtype, 0


def _key(record) -> tuple:
    if isinstance(record, Result):
        return record.id, record.dtype, record.seed, record.device
    return record.claim, record.dtype, record.operator


def load_output(path: str) -> tuple[dict[str, Any], list]:
    """A shard's output: a verify run (its results) or a self-test (its mutant records)."""
    from derivcheck._report import load_run
    from derivcheck._selftest import MutantRecord

    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InvalidArgument(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidArgument(f"{path}: not a JSON file ({exc})") from None
    if isinstance(data, dict) and isinstance(data.get("mutants"), list):
        try:
            return dict(data.get("environment") or {}), [MutantRecord(**m) for m in data["mutants"]]
        except TypeError as exc:
            raise InvalidArgument(f"{path}: a mutant record cannot be read: {exc}") from None
    return load_run(path, option="")


def write_costs(run_path: str) -> Path:
    """Refresh :data:`COSTS_FILE` from a saved cold run (``reports/run.json``)."""
    from derivcheck._report import load_run

    env, results = load_run(run_path)
    seconds = {f"{r.id}[{r.dtype}]": round(r.elapsed_s, 3) for r in results}
    target = Path(__file__).with_name(COSTS_FILE)
    target.write_text(json.dumps({"measured": f"derivcheck verify, profile {env.get('profile')}, "
                                              f"{env.get('jobs')} jobs, {env.get('machine')} {env.get('platform')}",
                                  "seconds": seconds}, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return target


if __name__ == "__main__":
    import sys

    print(f"wrote {write_costs(sys.argv[1])}")
