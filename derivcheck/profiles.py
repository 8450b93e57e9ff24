"""Search budgets, set by name: ``ci``, ``dev`` and ``thorough``.

The inputs a search tries depend on its profile's name and the seed only (:func:`search_seed`):
the same on every run and every machine, and unchanged by edits to the search code.
"""

from __future__ import annotations

import dataclasses
import hashlib

from derivcheck.errors import InvalidArgument

__all__ = ["PROFILES", "Profile", "profile_named", "search_seed"]


@dataclasses.dataclass(frozen=True)
class Profile:
    """How much to search.

    Attributes:
      examples: Hypothesis examples (batches) per claim and dtype, besides the fixed
        batches that always run first (every shape bucket and every input regime once).
      points: points per batch; each batch is one compiled, vmapped call.
      shrink_examples: single-point examples Hypothesis may try to shrink a failure.
    """

    name: str
    examples: int
    points: int
    shrink_examples: int


PROFILES: dict[str, Profile] = {
    # 5 generated + 5 fixed batches (every bucket and regime) of 128 points: 1,280 per claim.
    "ci": Profile("ci", examples=5, points=128, shrink_examples=150),
    # The ci budget on other inputs: what a developer runs besides the gate.
    "dev": Profile("dev", examples=5, points=128, shrink_examples=150),
    "thorough": Profile("thorough", examples=40, points=512, shrink_examples=600),
}


def profile_named(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        raise InvalidArgument(f"unknown profile {name!r}; choose one of {', '.join(PROFILES)}") from None


def search_seed(profile: Profile, seed: int) -> int:
    """Hypothesis's seed for a search under ``profile`` with ``seed``.

    Derandomized Hypothesis would seed itself from a hash of the search function's source,
    so that any refactor of the search reshuffled every input and every committed report;
    an explicit seed from the profile's name and ``seed`` alone does not.
    """
    digest = hashlib.sha256(f"derivcheck:{profile.name}:{seed}".encode()).digest()
    return int.from_bytes(digest[:8], "big")
