"""The claim catalog: every claim of every document, in document order.

This is the only place where :mod:`derivations` (the claims) and :mod:`reference` (the
truth) meet (DESIGN.md principle 1). Tests, the CLI and reports are generated from it.
"""

from __future__ import annotations

import fnmatch

from derivcheck.catalog import challa2022, dey, mnist_notes, sharma2024, vijay2019
from derivcheck.claims import Claim, Document
from derivcheck.errors import InvalidArgument

__all__ = ["DOCUMENTS", "catalog", "select"]

_MODULES = (sharma2024, challa2022, vijay2019, mnist_notes, dey)

#: Every bundled document, by key.
DOCUMENTS: dict[str, Document] = {m.DOCUMENT.key: m.DOCUMENT for m in _MODULES}


def catalog() -> tuple[Claim, ...]:
    """Every claim, in document order."""
    return tuple(claim for m in _MODULES for claim in m.CLAIMS)


def _document_matches(doc: Document, name: str) -> bool:
    return name in (doc.key, doc.seed, doc.seed.split("_")[0], doc.seed.removesuffix(".txt"))


def select(document: str | None = None, pattern: str | None = None) -> tuple[Claim, ...]:
    """Claims of ``document`` (key, seed file name or its number) whose id matches the glob.

    Raises:
      ValueError: for a document or pattern that matches nothing, naming the choices.
    """
    claims = catalog()
    if document is not None:
        docs = [d for d in DOCUMENTS.values() if _document_matches(d, document)]
        if not docs:
            known = ", ".join(f"{d.key} ({d.seed})" for d in DOCUMENTS.values())
            raise InvalidArgument(f"unknown document {document!r}; known: {known}")
        claims = tuple(c for c in claims if c.document in docs)
    if pattern is not None:
        claims = tuple(c for c in claims if fnmatch.fnmatchcase(c.id, pattern))
        if not claims:
            raise InvalidArgument(f"no claim matches {pattern!r}; `derivcheck list` shows the ids")
    return claims
