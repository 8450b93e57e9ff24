"""JAX's persistent compilation cache, with every entry written whole.

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

import os
import tempfile

__all__ = ["install", "whole_entries"]

_PARTIAL_PREFIX = ".partial-"


def _whole_entry_cache(base: type) -> type:
    """``base`` (JAX's LRUCache) with :meth:`put` writing a temporary file and renaming it."""

    class WholeEntryCache(base):
        def put(self, key: str, value: bytes) -> None:
            if getattr(self, "eviction_enabled", True) or not isinstance(value, (bytes, bytearray)):
                return super().put(key, value)  # locked mode: JAX's own writer, under its lock
            if not key:
                raise ValueError("key cannot be empty")
            directory = os.fspath(self.path)
            final = os.path.join(directory, f"{key}{_cache_suffix()}")
            if os.path.exists(final):
                return
            handle, partial = tempfile.mkstemp(dir=directory, prefix=_PARTIAL_PREFIX)
            try:
                with os.fdopen(handle, "wb") as out:
                    out.write(value)
                os.replace(partial, final)
            except BaseException:
                if os.path.exists(partial):
                    os.unlink(partial)
                raise

    WholeEntryCache.__name__ = WholeEntryCache.__qualname__ = "WholeEntryCache"
    return WholeEntryCache


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
