"""Hand-written closed forms, one module per document, transcribed as printed.

Nothing here calls JAX autodiff or imports :mod:`reference` (DESIGN.md principle 1).
"""
