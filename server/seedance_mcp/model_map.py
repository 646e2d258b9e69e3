"""Model ids the catalog does not know, declared by the user: `SEEDANCE_MODEL_MAP="ep-20251103-abcde=2.0,…"`.

Ark users often call their own inference endpoints (`ep-…`), and model ids change with every release; each entry
says which catalog model an id stands for, so validation applies that model's rules and the id is sent as given.
Pure: parsing and look-up only.
"""

from __future__ import annotations

import re

from seedance_mcp.catalog import MODELS_BY_KEY, ModelSpec

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$")


def parse_model_map(text: str) -> dict[str, str]:
    """`id=catalog-model,id=catalog-model` → {id: catalog key}. The right side is a key (`2.0`), id or alias.

    Raises ValueError naming the bad entry and the known catalog models."""
    mapping: dict[str, str] = {}
    for entry in (part.strip() for part in text.replace(";", ",").split(",")):
        if not entry:
            continue
        declared, sep, target = (side.strip() for side in entry.partition("="))
        if not sep or not declared or not target:
            raise ValueError(f"SEEDANCE_MODEL_MAP entry {entry!r} is not `id=model` (e.g. ep-20251103-abcde=2.0)")
        if not _ID.match(declared):
            raise ValueError(f"SEEDANCE_MODEL_MAP: {declared!r} is not a model or endpoint id")
        spec = catalog_model(target)
        if spec is None:
            known = ", ".join(MODELS_BY_KEY)
            raise ValueError(f"SEEDANCE_MODEL_MAP: {target!r} is not a catalog model (known: {known})")
        mapping[declared.lower()] = spec.key
    return mapping


def catalog_model(name: str) -> ModelSpec | None:
    """A catalog model by key, CN id, BytePlus id or alias, whatever the provider."""
    wanted = name.strip().lower()
    for spec in MODELS_BY_KEY.values():
        if wanted in (spec.key, spec.cn_id, spec.byteplus_id, *spec.aliases):
            return spec
    return None
