"""Errors a user can act on."""

__all__ = ["ClaimError", "InvalidArgument", "VacuousCheckWarning"]


class InvalidArgument(ValueError):
    """A bad argument (unknown claim, document, dtype, device or profile; a bad number).

    The CLI reports it in one line with exit code 2.
    """


class ClaimError(ValueError):
    """A closed form or reference that cannot be compared: it raised, or returned the wrong
    shape, dtype or structure. The message names the check and the output concerned."""


class VacuousCheckWarning(UserWarning):
    """A check that passed for a reason that proves nothing: the closed form computes what
    its reference computes, or the reference took one value at every point tried (so any
    closed form returning that value would pass). ``Result.vacuous`` says which."""
