"""Search budgets, set by name: ``ci`` (derandomized, fixed), ``dev`` and ``thorough``."""

from __future__ import annotations

import dataclasses

from derivcheck.errors import InvalidArgument

__all__ = ["PROFILES", "Profile", "profile_named"]


@dataclasses.dataclass(frozen=True)
class Profile:
    """How much to search.

    Attributes:
      examples: Hypothesis examples (batches) per claim and dtype, besides the fixed
        batches that always run first (every shape bucket and every input regime once).
      points: points per batch; each batch is one compiled, vmapped call.
      shrink_examples: single-point examples Hypothesis may try to shrink a failure.
      derandomize: the same inputs on every run (CI), or fresh ones (development).
    """

    name: str
    examples: int
    points: int
    shrink_examples: int
    derandomize: bool


PROFILES: dict[str, Profile] = {
    # 5 generated + 5 fixed batches (every bucket and regime) of 128 points: 1,280 per claim.
    "ci": Profile("ci", examples=5, points=128, shrink_examples=150, derandomize=True),
    "dev": Profile("dev", examples=5, points=128, shrink_examples=150, derandomize=False),
    "thorough": Profile("thorough", examples=40, points=512, shrink_examples=600, derandomize=False),
}


def profile_named(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        raise InvalidArgument(f"unknown profile {name!r}; choose one of {', '.join(PROFILES)}") from None
