"""Search budgets, set by name: ``ci`` (derandomized, fixed), ``dev`` and ``thorough``."""

from __future__ import annotations

import dataclasses

from derivcheck.errors import InvalidArgument

__all__ = ["PROFILES", "Profile", "profile_named"]


@dataclasses.dataclass(frozen=True)
class Profile:
    """How much to search.

    Attributes:
      examples: Hypothesis examples (batches) per claim and dtype, besides one fixed batch
        per shape bucket that always runs first.
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
    # 5 generated + 3 bucket batches of 128 points: at least 1,024 points per claim.
    "ci": Profile("ci", examples=5, points=128, shrink_examples=150, derandomize=True),
    "dev": Profile("dev", examples=5, points=128, shrink_examples=150, derandomize=False),
    "thorough": Profile("thorough", examples=40, points=512, shrink_examples=600, derandomize=False),
}


def profile_named(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        raise InvalidArgument(f"unknown profile {name!r}; choose one of {', '.join(PROFILES)}") from None
