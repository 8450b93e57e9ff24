"""The truth: forward definitions and JAX autodiff of them.

Forward functions are written from elementary operations (exp, log, division), never
from JAX operations that carry their own hand-written derivative rule (``jax.nn.sigmoid``,
``jax.nn.softmax``, ``jnp.tanh``'s ``1 - tanh**2``), so autodiff here is independent of the
closed forms it checks. Nothing here imports :mod:`derivations` (DESIGN.md principle 1).
"""
