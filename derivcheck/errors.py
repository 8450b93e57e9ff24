"""Errors a user can act on."""

__all__ = ["ClaimError", "InvalidArgument"]


class InvalidArgument(ValueError):
    """A bad argument (unknown claim, document, dtype, device or profile; a bad number).

    The CLI reports it in one line with exit code 2.
    """


class ClaimError(ValueError):
    """A closed form or reference that cannot be compared: it raised, or returned the wrong
    shape, dtype or structure. The message names the check and the output concerned."""
