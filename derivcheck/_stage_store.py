"""Compiled checker stages kept on disk, found again before anything is interpreted.

JAX's persistent cache is keyed by the lowered program, so a warm run still traces every
stage, runs the error-bound interpreter over it and lowers the result before it can look
an executable up: most of a cold run's cost. Here a stage is keyed by what it is made from,
known after tracing the checked functions alone at one point (milliseconds, and the trace
the checker's output validation makes anyway):

* the plain jaxpr of every function the stage interprets, at the shapes of one point, and
  the batch's shapes (:func:`jaxpr_of`: operations, parameters, literals and constants by
  value, whatever the variables are named);
* what the stage adds to them (its kind, kinks, sides, which input bounds are exact), the
  platform, device, matrix-product precision and narrow arithmetic;
* the engine's own source (every module of the package but the bundled catalogs: the
  interpreter's rules, the stages, the compiler options), ``XLA_FLAGS``, the JAX, jaxlib
  and Python versions and the JAX settings that change a program.

A function whose jaxpr holds what cannot be compared by value (a host callback, a Python
function, an object printed by its address) has no key: its stage is compiled as if there
were no store. An entry holds the serialized executable (compiled past JAX's own cache,
:meth:`StageStore.compile`), its pytrees and what tracing told the checker (the operations
whose bound was estimated, which output bounds are exactly zero), compressed, after a
digest of it all: written whole (a temporary file renamed over its name) and loaded only
if its digest matches, so a reader never loads part of one. Each engine source has its own
folder; the last :data:`GENERATIONS` are kept. Loading an executable runs what it holds:
the directory must be the user's own, as for JAX's cache.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import inspect
import os
import pickle
import re
import shutil
import sys
import zlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import jax
import numpy as np
from jax.extend import core
from jax.extend.mlir import passmanager

from derivcheck._compile_cache import bypassed, ready_to_load, write_whole

__all__ = ["GENERATIONS", "STAGES", "StageStore", "Unkeyable", "configure", "configured", "digest_of", "engine_digest",
           "fingerprint", "jaxpr_of", "store", "traced"]

#: Parameters of custom-rule primitives that hold the rule, not the computation: the
#: stages evaluate the primal computation and never differentiate it.
_RULE_PARAMS = {
    "custom_jvp_call": frozenset({"jvp_jaxpr_fun", "jvp_jaxpr_thunk"}),
    "custom_vjp_call": frozenset({"fwd_jaxpr_thunk", "bwd", "out_trees"}),
    "custom_vjp_call_jaxpr": frozenset({"fwd_jaxpr_thunk", "bwd", "out_trees"}),
}
#: The store's folder inside a compile-cache directory (``--compile-cache``), beside JAX's entries.
STAGES = "derivcheck-stages"
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{6,}")
_SUFFIX = ".stage"
_FORMAT = 1


class Unkeyable(Exception):
    """A jaxpr holds something that cannot be compared by value (a host callback, an object
    known only by its address): its stage gets no key."""


def _feed_value(h, value: Any, where: str) -> None:
    if isinstance(value, core.ClosedJaxpr):
        h.update(b"closed{")
        _feed_jaxpr(h, value.jaxpr, value.consts)
        h.update(b"}")
    elif isinstance(value, core.Jaxpr):
        h.update(b"open{")
        _feed_jaxpr(h, value, ())
        h.update(b"}")
    elif isinstance(value, (bool, int, float, complex, str, type(None))):
        h.update(f"{type(value).__name__}:{value!r};".encode())
    elif isinstance(value, (np.ndarray, np.generic, jax.Array)):
        array = np.asarray(value)
        h.update(f"array:{array.dtype}:{array.shape}:".encode())
        h.update(np.ascontiguousarray(array).tobytes())
    elif isinstance(value, (tuple, list)):
        h.update(f"{type(value).__name__}(".encode())
        for item in value:
            _feed_value(h, item, where)
        h.update(b")")
    elif isinstance(value, (frozenset, set)):
        h.update(b"set(")
        for text in sorted(repr(v) for v in value):
            _feed_text(h, text, where)
        h.update(b")")
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        h.update(f"{type(value).__module__}.{type(value).__qualname__}(".encode())
        for field in dataclasses.fields(value):
            h.update(f"{field.name}=".encode())
            _feed_value(h, getattr(value, field.name), where)
        h.update(b")")
    elif isinstance(value, dict):
        h.update(b"dict(")
        for k in sorted(value, key=repr):
            _feed_text(h, repr(k), where)
            _feed_value(h, value[k], where)
        h.update(b")")
    elif inspect.isroutine(value) or isinstance(value, functools.partial) or type(value).__name__ == "WrappedFun":
        raise Unkeyable(f"{where} is a Python function")
    else:  # by its printed value; most other callables print their address (Unkeyable)
        _feed_text(h, f"{type(value).__module__}.{type(value).__qualname__}:{value!r}", where)


def _feed_text(h, text: str, where: str) -> None:
    if _ADDRESS.search(text):
        raise Unkeyable(f"{where} is known only by its address")
    h.update(text.encode())
    h.update(b";")


def _feed_jaxpr(h, jaxpr: core.Jaxpr, consts: Iterable[Any]) -> None:
    names: dict[Any, int] = {}

    def atom(v) -> None:
        if isinstance(v, core.Literal):
            h.update(f"lit:{v.aval}:".encode())
            _feed_value(h, v.val, "a literal")
        else:
            h.update(f"v{names.setdefault(v, len(names))}:{v.aval};".encode())

    for v in (*jaxpr.constvars, *jaxpr.invars):
        atom(v)
    for c in consts:
        _feed_value(h, c, "a constant")
    h.update(f"effects:{sorted(map(repr, jaxpr.effects))};".encode())
    for eqn in jaxpr.eqns:
        name = eqn.primitive.name
        if "callback" in name:
            raise Unkeyable(f"{name} runs Python on the host")
        h.update(f"[{name}](".encode())
        for v in eqn.invars:
            atom(v)
        h.update(b")")
        ignored = _RULE_PARAMS.get(name, frozenset())
        for key in sorted(eqn.params):
            h.update(f"{key}=".encode())
            if key in ignored:
                h.update(b"rule;")
            else:
                _feed_value(h, eqn.params[key], f"parameter {key} of {name}")
        h.update(b"->")
        for v in eqn.outvars:
            atom(v)
    h.update(b"out(")
    for v in jaxpr.outvars:
        atom(v)
    h.update(b")")


def fingerprint(closed: core.ClosedJaxpr) -> str:
    """A digest of ``closed`` by value: equal for jaxprs that compute the same operations on
    the same constants, whatever their variables are named; :class:`Unkeyable` where it
    holds a host callback or an object known only by its address."""
    h = hashlib.sha256()
    _feed_jaxpr(h, closed.jaxpr, closed.consts)
    return h.hexdigest()


def _flat_avals(args) -> tuple[Any, tuple[jax.ShapeDtypeStruct, ...]]:
    flat, tree = jax.tree_util.tree_flatten(args)
    return tree, tuple(jax.ShapeDtypeStruct(a.shape, a.dtype) for a in flat)


@functools.lru_cache(maxsize=4096)
def _traced(fn: Callable[..., Any], tree, avals: tuple[jax.ShapeDtypeStruct, ...]):
    return jax.make_jaxpr(lambda *f: fn(*jax.tree_util.tree_unflatten(tree, list(f))), return_shape=True)(*avals)


def traced(fn: Callable[..., Any], *args: Any):
    """``fn``'s closed jaxpr and output shapes at the shapes and dtypes of ``args``
    (pytrees); traced once per function and shapes in a process (the checker's output
    validation and a stage's key share it)."""
    tree, avals = _flat_avals(args)
    try:
        return _traced(fn, tree, avals)
    except TypeError as exc:  # an unhashable callable: traced every time
        if "unhashable" not in str(exc):
            raise
        return _traced.__wrapped__(fn, tree, avals)


@functools.lru_cache(maxsize=4096)
def _digest(fn: Callable[..., Any], tree, avals: tuple[jax.ShapeDtypeStruct, ...]) -> str:
    closed, out = _traced(fn, tree, avals)
    h = hashlib.sha256()
    _feed_text(h, f"{tree}->{jax.tree_util.tree_structure(out)}", "a pytree's structure")
    _feed_jaxpr(h, closed.jaxpr, closed.consts)
    return h.hexdigest()


def jaxpr_of(fn: Callable[..., Any], *args: Any) -> str:
    """The :func:`fingerprint` of ``fn`` at one point of the shapes and dtypes of ``args``
    (pytrees), with the structure of its inputs and outputs.

    A stage runs ``jax.vmap(fn)`` over a batch; it is keyed by ``fn`` at one point and the
    batch's size. The jaxpr of ``vmap(fn)`` is JAX's batching of that of ``fn``, operation by
    operation, for every function whose Python code does not ask whether it is being
    vmapped (``custom_vmap`` and host callbacks, which hold their own rules, are
    :class:`Unkeyable`); tracing at one point costs a third of tracing the batch."""
    tree, avals = _flat_avals(args)
    try:
        return _digest(fn, tree, avals)
    except TypeError as exc:
        if "unhashable" not in str(exc):
            raise
        return _digest.__wrapped__(fn, tree, avals)


def digest_of(value: Any) -> str:
    """A digest of a stage's parameter (kinks, sides, narrow arithmetic) by value: sets
    sorted, dataclasses field by field; :class:`Unkeyable` for a callable or an address."""
    h = hashlib.sha256()
    _feed_value(h, value, "a stage parameter")
    return h.hexdigest()


@functools.cache
def engine_digest() -> str:
    """The package's source (every module but the bundled catalogs, whose functions are
    keyed by their jaxprs) with the versions of Python, JAX and jaxlib."""
    h = hashlib.sha256(f"{sys.version}|{jax.__version__}|{jax.lib.__version__}|{_FORMAT}".encode())
    package = Path(__file__).parent
    for path in sorted(package.rglob("*.py")):
        if "catalog" in path.relative_to(package).parts[:-1]:
            continue
        h.update(path.relative_to(package).as_posix().encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def _environment(device: jax.Device) -> str:
    config = jax.config
    return "|".join(map(str, (
        engine_digest(), device.platform, device.device_kind, device.id, device.client.platform_version,
        os.environ.get("XLA_FLAGS", ""), config.jax_enable_x64, config.jax_default_matmul_precision,
        config.jax_numpy_dtype_promotion,
    )))


#: Folders of other engine sources (or versions) kept beside the current one: a developer
#: who edits the engine and goes back finds the stages of the last few; older ones, never
#: found again by any key, are removed.
GENERATIONS = 3


class StageStore:
    """Serialized stage executables under ``directory``, one file per key, in a folder per
    engine source and versions (:func:`engine_digest`)."""

    def __init__(self, directory: str | os.PathLike[str]):
        self.root = Path(directory)
        self.directory = self.root / engine_digest()[:20]
        self._pruned = False
        #: Why an entry could not be written (then none is tried again), or None.
        self.unwritable: str | None = None

    def key(self, device: jax.Device, parts: tuple[str, ...]) -> str:
        return hashlib.sha256("\n".join((_environment(device), *parts)).encode()).hexdigest()

    def load(self, key: str, device: jax.Device):
        """The compiled stage stored under ``key`` and what its tracing told, or None."""
        from jax.experimental.serialize_executable import deserialize_and_load

        try:
            blob = (self.directory / f"{key}{_SUFFIX}").read_bytes()
        except OSError:
            return None
        digest, body = blob[:32], blob[32:]
        if hashlib.sha256(body).digest() != digest:
            return None
        try:
            payload, in_tree, out_tree, told = pickle.loads(zlib.decompress(body))
        except Exception:  # an entry of another format: compiled again and replaced
            return None
        try:
            compiled = deserialize_and_load(payload, in_tree, out_tree, backend=device.client,
                                            execution_devices=[device])
        except Exception:  # one XLA will not load here: compiled again and replaced
            return None
        return compiled, told

    def compile(self, key: str, lowered, told: Callable[[], Any]):
        """``lowered`` compiled, and stored under ``key`` with ``told()``.

        Compiled past JAX's persistent cache (:func:`derivcheck._compile_cache.bypassed`):
        a CPU executable loaded from a serialization serializes again without its kernels
        (jaxlib 0.10.2: loading the second serialization fails with "Function abs.3_kernel
        not found"), and two processes compiling the same stage at once would otherwise
        store what JAX's cache gave the second. One that came from it all the same (a JAX
        where it cannot be bypassed) is used, never stored. Compiled without source
        locations (:func:`_strip_locations`): they only name operations, and a stored
        stage is loaded far more often than it is read."""
        hits = _JAX_CACHE_HITS[0]
        _strip_locations(lowered)
        with bypassed():
            compiled = lowered.compile()
        if _JAX_CACHE_HITS[0] == hits:
            self.save(key, compiled, told())
        return compiled

    def save(self, key: str, compiled, told: Any) -> bool:
        """Store ``compiled`` under ``key``; False where it cannot be serialized (an
        executable holding constants or host callbacks) or written (said once, on stderr:
        the check goes on without the cache), and then nothing is written."""
        from jax.experimental.serialize_executable import serialize

        if self.unwritable is not None:
            return False
        try:
            payload, in_tree, out_tree = serialize(compiled)
            body = pickle.dumps((payload, in_tree, out_tree, told), protocol=pickle.HIGHEST_PROTOCOL)
        except (ValueError, NotImplementedError, TypeError, pickle.PicklingError):
            return False
        body = zlib.compress(body, 1)  # a quarter of the size; a few milliseconds a megabyte
        try:
            write_whole(self.directory / f"{key}{_SUFFIX}", hashlib.sha256(body).digest() + body)
        except OSError as exc:  # a full disk or a removed folder: the check goes on, uncached
            self.unwritable = exc.strerror or str(exc)
            print(f"derivcheck: note: cannot write to the compile cache {self.root} ({self.unwritable}); "
                  "stages are compiled and not kept from now on", file=sys.stderr, flush=True)
            return False
        if not self._pruned:
            self._pruned = True
            self.prune()
        return True

    def prune(self) -> None:
        """Remove the folders of all but the :data:`GENERATIONS` engines used last (this one
        marked used now). Another process still using one finds its stages gone and
        compiles them: nothing is ever read from a removed folder."""
        os.utime(self.directory)
        others = []
        for folder in self.root.iterdir():
            try:  # another process pruning at once may have removed it since the listing
                if folder.is_dir() and folder != self.directory:
                    others.append((folder.stat().st_mtime, folder))
            except OSError:
                continue
        others.sort(reverse=True)
        for _, old in others[GENERATIONS - 1:]:
            shutil.rmtree(old, ignore_errors=True)


def _strip_locations(lowered) -> None:
    """Drop the source locations from ``lowered``'s module, in place, before it is compiled.

    XLA keeps each location as its operation's metadata (the name stack, file and line)
    in the executable, and loading one rebuilds its HLO module from the serialization:
    the time goes into allocating instructions and their strings, so it grows with what
    the executable holds (`perf` on loading all 1,000 stages of the gate, 2026-12-07). The
    metadata names operations for profiles and dumps; it changes no instruction. Without
    it the gate's stages are 80.5 MB serialized instead of 99.4 and load in 8.4 s instead
    of 9.6 (one process, all 1,000)."""
    module = lowered.compiler_ir("stablehlo")
    with module.context:
        passmanager.PassManager.parse("builtin.module(strip-debuginfo)").run(module.operation)


_STORE: list[StageStore | None] = [None]
#: Executables JAX's persistent cache has supplied in this process (its monitoring events).
_JAX_CACHE_HITS = [0]


def _count_jax_cache_hits(event: str, **_: Any) -> None:
    if event == "/jax/compilation_cache/cache_hits":
        _JAX_CACHE_HITS[0] += 1


@contextlib.contextmanager
def configured(directory: str | os.PathLike[str] | None) -> Iterator[None]:
    """The store in ``directory`` (None: none) inside the block, the one before after it."""
    before = store()
    configure(directory)
    try:
        yield
    finally:
        configure(before.root if before is not None else None)


def configure(directory: str | os.PathLike[str] | None) -> None:
    """Keep compiled stages in ``directory`` (None: keep none); none where this process
    cannot run executables it did not compile (:func:`derivcheck._compile_cache.ready_to_load`)."""
    if directory is not None and not ready_to_load():
        directory = None
    if directory is not None and _STORE[0] is None:
        jax.monitoring.register_event_listener(_count_jax_cache_hits)
    elif directory is None and _STORE[0] is not None:
        jax.monitoring.unregister_event_listener(_count_jax_cache_hits)
    _STORE[0] = None if directory is None else StageStore(directory)


def store() -> StageStore | None:
    """The configured store, or None."""
    return _STORE[0]
