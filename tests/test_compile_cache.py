"""The persistent compilation cache writes whole entries: a reader finds none or all of one."""

import os

import pytest

from derivcheck import _compile_cache

ENTRY = bytes(range(256)) * 64


def _cache(path):
    from jax._src import compilation_cache

    assert _compile_cache.install() and _compile_cache.whole_entries()
    return compilation_cache.LRUCache(str(path), max_size=-1)  # what JAX builds for a cache dir


def test_a_reader_during_a_write_finds_no_entry_then_the_whole_one(tmp_path, monkeypatch):
    cache = _cache(tmp_path)
    seen_mid_write = []
    rename = os.replace

    def replace(partial, final):
        # The moment before the entry appears: written in full, yet invisible to a reader.
        with open(partial, "rb") as f:
            assert f.read() == ENTRY
        seen_mid_write.append(cache.get("key"))
        rename(partial, final)

    monkeypatch.setattr(os, "replace", replace)
    cache.put("key", ENTRY)
    assert seen_mid_write == [None]
    assert cache.get("key") == ENTRY
    assert sorted(p.name for p in tmp_path.iterdir()) == ["key-cache"]


def test_an_existing_entry_is_kept_and_a_failed_write_leaves_nothing(tmp_path, monkeypatch):
    cache = _cache(tmp_path)
    cache.put("key", ENTRY)
    cache.put("key", b"other")  # as JAX's: the first entry of a key stays
    assert cache.get("key") == ENTRY

    def full_disk(partial, final):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", full_disk)
    with pytest.raises(OSError, match="No space"):
        cache.put("second", ENTRY)
    assert cache.get("second") is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["key-cache"]
