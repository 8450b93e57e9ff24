"""The claim catalogs: documents and their claims, loaded from Python modules or files.

A catalog is a module (a dotted name, or a ``.py`` file anywhere) that defines
``DOCUMENT`` (a :class:`~derivcheck.claims.Document`) and ``CLAIMS`` (its
:class:`~derivcheck.claims.Claim` objects, in document order). The five bundled documents are
catalogs like any user's, loaded by :func:`load` from :data:`BUNDLED`; ``derivcheck ...
--catalog PATH_OR_MODULE`` loads others instead (:func:`use`), and worker processes load
the same sources. The bundled modules are the only place where :mod:`derivations` (the
claims) and :mod:`reference` (the truth) meet (DESIGN.md principle 1).
"""

from __future__ import annotations

import dataclasses
import fnmatch
import hashlib
import importlib
import importlib.util
import sys
from collections.abc import Sequence
from pathlib import Path

from derivcheck.claims import Claim, Document
from derivcheck.errors import InvalidArgument

__all__ = ["BUNDLED", "DOCUMENTS", "ENTRY_POINT_GROUP", "Catalog", "CatalogError", "active_sources", "catalog",
           "documents", "load", "registered", "select", "source_of", "use"]

#: The bundled documents' catalog modules, in report order.
BUNDLED: tuple[str, ...] = tuple(f"derivcheck.catalog.{name}" for name in
                                 ("sharma2024", "challa2022", "vijay2019", "mnist_notes", "dey"))


#: The entry-point group through which an installed package registers its catalogs, as
#: pytest plugins register under ``pytest11``: ``[project.entry-points."derivcheck.catalogs"]``
#: ``notes = "mypackage.notes"`` in its pyproject.toml, the value a catalog module.
ENTRY_POINT_GROUP = "derivcheck.catalogs"


def registered() -> tuple[str, ...]:
    """The catalog modules installed packages register (:data:`ENTRY_POINT_GROUP`), by name."""
    from importlib.metadata import entry_points

    return tuple(ep.value for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: ep.name))


class CatalogError(InvalidArgument):
    """A catalog that cannot be used: missing, not importable, or declaring bad claims.
    The CLI reports it in one line, naming the catalog and the claim, with exit code 2."""


@dataclasses.dataclass(frozen=True)
class Catalog:
    """One loaded catalog: where it came from, its document and its claims."""

    source: str
    document: Document
    claims: tuple[Claim, ...]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _is_path(source: str) -> bool:
    return source.endswith(".py") or "/" in source or "\\" in source


def _import(source: str):
    if _is_path(source):
        path = Path(source)
        if not path.is_file():
            raise CatalogError(f"catalog {source}: no such file")
        # A private module name per file: two catalogs named notes.py in two folders differ.
        digest = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:12]
        name = f"derivcheck_user_catalog_{path.stem}_{digest}"
        if name in sys.modules:
            return sys.modules[name]
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # before running it: dataclasses and pickling look it up
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            del sys.modules[name]
            raise CatalogError(f"catalog {source}: does not import: {_first_line(exc)}") from None
        return module
    try:
        return importlib.import_module(source)
    except Exception as exc:
        raise CatalogError(f"catalog {source}: does not import: {_first_line(exc)}") from None


def load(source: str) -> Catalog:
    """Load the catalog a module or ``.py`` file declares, checking what it declares.

    Raises:
      CatalogError: the file is missing or does not import; it declares no ``DOCUMENT`` or
        no ``CLAIMS``; a claim belongs to another document, repeats an id, or ``corrects`` a
        claim that is not there.
    """
    module = _import(source)
    document, claims = getattr(module, "DOCUMENT", None), getattr(module, "CLAIMS", None)
    if not isinstance(document, Document):
        raise CatalogError(f"catalog {source}: declares no document "
                           "(define DOCUMENT = derivcheck.Document(...) and CLAIMS = [...])")
    if isinstance(claims, (str, bytes)) or not isinstance(claims, Sequence) or not claims:
        raise CatalogError(f"catalog {source}: declares no claims (define CLAIMS, a list of derivcheck.Claim)")
    seen: set[str] = set()
    for claim in claims:
        if not isinstance(claim, Claim):
            raise CatalogError(f"catalog {source}: CLAIMS holds a {type(claim).__name__}, not a derivcheck.Claim")
        if claim.document != document:
            raise CatalogError(f"catalog {source}: claim {claim.id} belongs to document {claim.document.key!r}, "
                               f"not to this catalog's {document.key!r}")
        if claim.id in seen:
            raise CatalogError(f"catalog {source}: claim id {claim.id} is declared twice")
        seen.add(claim.id)
    for claim in claims:
        if claim.corrects is not None and claim.corrects not in seen:
            raise CatalogError(f"catalog {source}: claim {claim.id} corrects {claim.corrects!r}, "
                               "which names no claim of this catalog")
    _SOURCES[document] = source
    return Catalog(source, document, tuple(claims))


#: Where each loaded document came from (for replay commands).
_SOURCES: dict[Document, str] = {}
_ACTIVE: list[Catalog] = []
_ACTIVE_SOURCES: list[str] = []


def use(sources: Sequence[str] | None = None) -> None:
    """Make these catalogs the ones :func:`catalog` and :func:`select` see (None: the bundled).

    Raises:
      CatalogError: as :func:`load`; or two catalogs share a document key or a claim id.
    """
    chosen = tuple(sources) if sources else BUNDLED
    loaded = [load(source) for source in chosen]
    owner: dict[str, str] = {}
    keys: dict[str, str] = {}
    for cat in loaded:
        if cat.document.key in keys and keys[cat.document.key] != cat.source:
            raise CatalogError(f"catalog {cat.source}: document key {cat.document.key!r} is already "
                               f"declared by {keys[cat.document.key]}")
        keys[cat.document.key] = cat.source
        for claim in cat.claims:
            if claim.id in owner and owner[claim.id] != cat.source:
                raise CatalogError(f"catalog {cat.source}: claim id {claim.id} is already declared by "
                                   f"{owner[claim.id]}")
            owner[claim.id] = cat.source
    # The same source given twice is loaded once.
    unique = list({cat.source: cat for cat in loaded}.values())
    _ACTIVE[:] = unique
    _ACTIVE_SOURCES[:] = [] if not sources else [cat.source for cat in unique]


def _active() -> list[Catalog]:
    if not _ACTIVE:
        use(None)
    return _ACTIVE


def active_sources() -> tuple[str, ...]:
    """The ``--catalog`` sources in use; empty for the bundled documents."""
    return tuple(_ACTIVE_SOURCES)


def source_of(document: Document) -> str | None:
    """The ``--catalog`` source that declares ``document``; None for a bundled document."""
    source = _SOURCES.get(document)
    return None if source is None or source in BUNDLED else source


def catalog() -> tuple[Claim, ...]:
    """Every claim of the catalogs in use, in document order."""
    return tuple(claim for cat in _active() for claim in cat.claims)


def documents() -> dict[str, Document]:
    """The documents in use, by key."""
    return {cat.document.key: cat.document for cat in _active()}


#: Every bundled document, by key.
DOCUMENTS: dict[str, Document] = {cat.document.key: cat.document for cat in map(load, BUNDLED)}


def _document_matches(doc: Document, name: str) -> bool:
    names = {doc.key}
    if doc.seed:
        names |= {doc.seed, doc.seed.split("_")[0], doc.seed.removesuffix(".txt")}
    return name in names


def select(document: str | None = None, pattern: str | None = None) -> tuple[Claim, ...]:
    """Claims of ``document`` (key, seed file name or its number) whose id matches the glob.

    Raises:
      ValueError: for a document or pattern that matches nothing, naming the choices.
    """
    claims = catalog()
    if document is not None:
        known_documents = documents()
        docs = [d for d in known_documents.values() if _document_matches(d, document)]
        if not docs:
            known = ", ".join(f"{d.key} ({d.seed})" if d.seed else d.key for d in known_documents.values())
            raise InvalidArgument(f"unknown document {document!r}; known: {known}")
        claims = tuple(c for c in claims if c.document in docs)
    if pattern is not None:
        claims = tuple(c for c in claims if fnmatch.fnmatchcase(c.id, pattern))
        if not claims:
            raise InvalidArgument(f"no claim matches {pattern!r}; `derivcheck list` shows the ids")
    return claims
