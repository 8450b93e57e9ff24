"""JAX's persistent compilation cache, with every entry written whole, and bypassed for
the checker stages the project stores itself (:mod:`derivcheck._stage_store`).

JAX's file cache (``jax._src.lru_cache.LRUCache`` without a size limit) writes an entry in
place. A process that reads the entry while another writes it reads a truncated one: JAX
reports that with a warning and compiles again, which is harmless in a run and an error
in the tests, where warnings are errors; two processes compiling the same program at once
(the test workers, the command-line runs they start) do exactly that. Here an entry is
written to a temporary file in the cache directory and renamed over its name
(``os.replace``, atomic within one file system): a reader finds no entry or the whole one.

JAX's locked mode (``jax_compilation_cache_max_size``) would avoid the race too, but rereads
the access time of every entry on each write; a size limit keeps JAX's own writer here.

The writer is installed through JAX's private module ``jax._src.compilation_cache``, whose
name for the cache class it replaces; :func:`install` says whether it could be (a JAX that
moved it keeps its own writer, and the tests then run without a cache: only what is safe is
kept).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = ["bypassed", "install", "ready_to_load", "whole_entries", "write_whole"]

_PARTIAL_PREFIX = ".partial-"


def _whole_entry_cache(base: type) -> type:
    """``base`` (JAX's LRUCache) with :meth:`put` writing a temporary file and renaming it."""

    class WholeEntryCache(base):
        def put(self, key: str, value: bytes) -> None:
            if getattr(self, "eviction_enabled", True) or not isinstance(value, (bytes, bytearray)):
                return super().put(key, value)  # locked mode: JAX's own writer, under its lock
            if not key:
                raise ValueError("key cannot be empty")
            final = Path(os.fspath(self.path)) / f"{key}{_cache_suffix()}"
            if not final.exists():
                write_whole(final, value)

    WholeEntryCache.__name__ = WholeEntryCache.__qualname__ = "WholeEntryCache"
    return WholeEntryCache


def write_whole(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path`` and rename it over ``path``
    (atomic within one file system): a reader finds no file or the whole of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, partial = tempfile.mkstemp(dir=path.parent, prefix=_PARTIAL_PREFIX)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(partial, path)
    except BaseException:
        if os.path.exists(partial):
            os.unlink(partial)
        raise


def _cache_suffix() -> str:
    from jax._src import lru_cache

    return lru_cache._CACHE_SUFFIX


def install() -> bool:
    """Make JAX's file cache write whole entries; True if it does (now or already)."""
    try:
        from jax._src import compilation_cache, lru_cache
    except ImportError:
        return False
    current = getattr(compilation_cache, "LRUCache", None)
    if current is not None and getattr(current, "__name__", "") == "WholeEntryCache":
        return True
    if current is not getattr(lru_cache, "LRUCache", None) or not hasattr(lru_cache, "_CACHE_SUFFIX"):
        return False
    if not callable(getattr(current, "put", None)) or not hasattr(compilation_cache, "get_file_cache"):
        return False
    compilation_cache.LRUCache = _whole_entry_cache(current)
    return True


def whole_entries() -> bool:
    """Whether the cache JAX builds writes whole entries (:func:`install` has run)."""
    try:
        from jax._src import compilation_cache
    except ImportError:
        return False
    return getattr(getattr(compilation_cache, "LRUCache", None), "__name__", "") == "WholeEntryCache"


@contextlib.contextmanager
def bypassed() -> Iterator[bool]:
    """Compile without JAX's persistent cache inside the block; yields whether it could.

    Checker stages are kept by the project's own store (:mod:`derivcheck._stage_store`),
    which serializes what XLA compiled: an executable JAX's cache loaded instead serializes
    again without its kernels (jaxlib 0.10.2), so a stage is never taken from it, and it
    keeps no second copy of one. JAX asks ``compilation_cache.is_cache_used`` before every
    lookup; a JAX without it yields False (the caller then stores nothing it compiled).
    """
    try:
        from jax._src import compilation_cache
    except ImportError:
        yield False
        return
    used = getattr(compilation_cache, "is_cache_used", None)
    if not callable(used):
        yield False
        return
    compilation_cache.is_cache_used = lambda backend: False
    try:
        yield True
    finally:
        compilation_cache.is_cache_used = used


def ready_to_load() -> bool:
    """Make this process able to run executables it did not compile; False if it cannot.

    jaxlib's CPU kernels for LAPACK (Cholesky, LU, eigh, QR, SVD: ``slogdet``, ``solve``,
    ``inv``) take their function pointers from ``initialize()``, which JAX calls while
    lowering a linear-algebra operation. A process that loads such an executable from a
    cache lowers none, and running it jumps through a null pointer: a segmentation fault
    (jaxlib 0.10.2; ten lines of ``jax.experimental.serialize_executable`` reproduce it,
    and initializing first cures it). This is what crashed a test worker on a warm cache.
    """
    try:
        from jax._src.lax import linalg
    except ImportError:
        return False
    initialize = getattr(linalg, "initialize_lapack", None)
    if not callable(initialize):
        return False
    initialize()
    return True
