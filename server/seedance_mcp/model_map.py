"""Model ids the catalog does not know, declared by the user: `SEEDANCE_MODEL_MAP="ep-20251103-abcde=2.0,…"`.

Ark users often call their own inference endpoints (`ep-…`), and model ids change with every release; each entry
says which catalog model an id stands for, so validation applies that model's rules and the id is sent as given.
(A model the catalog should know for good belongs in SEEDANCE_CATALOG_FILE instead.) Pure: parsing and look-up only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from seedance_mcp.catalog import Catalog, ModelSpec

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$")


def parse_model_map(text: str, catalog: Catalog) -> dict[str, str]:
    """`id=catalog-model,id=catalog-model` → {id: catalog key}. The right side is a key (`2.0`), id or alias.

    Raises ValueError naming the bad entry and the known catalog models."""
    pairs: dict[str, str] = {}
    for entry in (part.strip() for part in text.replace(";", ",").split(",")):
        if not entry:
            continue
        declared, sep, target = (side.strip() for side in entry.partition("="))
        if not sep or not declared or not target:
            raise ValueError(f"SEEDANCE_MODEL_MAP entry {entry!r} is not `id=model` (e.g. ep-20251103-abcde=2.0)")
        pairs[declared] = target
    return checked_model_map(pairs, catalog)


def checked_model_map(pairs: Mapping[str, str], catalog: Catalog) -> dict[str, str]:
    """Declared ids (lower-cased) → catalog keys, each target checked against the catalog."""
    mapping: dict[str, str] = {}
    for declared, target in pairs.items():
        if not _ID.match(declared):
            raise ValueError(f"SEEDANCE_MODEL_MAP: {declared!r} is not a model or endpoint id")
        spec = catalog_model(target, catalog)
        if spec is None:
            known = ", ".join(catalog.models)
            raise ValueError(f"SEEDANCE_MODEL_MAP: {target!r} is not a catalog model (known: {known})")
        mapping[declared.lower()] = spec.key
    return mapping


def catalog_model(name: str, catalog: Catalog) -> ModelSpec | None:
    """A catalog model by key, CN id, BytePlus id or alias, whatever the provider."""
    return catalog.find(name)
