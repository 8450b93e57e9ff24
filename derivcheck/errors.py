"""Errors a user can act on."""

__all__ = ["InvalidArgument"]


class InvalidArgument(ValueError):
    """A bad argument (unknown claim, document, dtype, device or profile; a bad number).

    The CLI reports it in one line with exit code 2.
    """
