"""A lean `tools/list`: every conversation pays for the tool schemas, so they carry only what a model or a client
needs. Pure: a schema in, an equivalent smaller schema out.

- Titles go (pydantic repeats each field name as a title), and `default: null` (absent means the same).
- `anyOf: [X, {"type": "null"}]` becomes X with `"null"` added to its type (and to its enum): the same values.
- Output schemas (`output_schema`) also lose their descriptions and defaults (the model reads results, not their
  schema), and `null` from their types: structured results leave out what has nothing to say rather than sending
  null. Field names, types, enums and `required` stay, so a client still validates structured content.
"""

from __future__ import annotations

from typing import Any, cast


def lean_schema(schema: dict[str, Any], *, keep_descriptions: bool) -> dict[str, Any]:
    return cast("dict[str, Any]", _lean(schema, keep_descriptions, top=True))


def output_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A result's schema as published: lean, without descriptions, defaults or null."""
    return cast("dict[str, Any]", _without_null(_lean(schema, keep_descriptions=False, top=False)))


def _without_null(node: Any) -> Any:
    if isinstance(node, list):
        return [_without_null(item) for item in cast("list[Any]", node)]
    if not isinstance(node, dict):
        return node
    result: dict[str, Any] = {}
    for key, value in cast("dict[str, Any]", node).items():
        if key == "default":
            continue
        if key in ("properties", "$defs"):
            result[key] = {name: _without_null(sub) for name, sub in cast("dict[str, Any]", value).items()}
        elif key == "type" and isinstance(value, list):
            kinds = [kind for kind in cast("list[str]", value) if kind != "null"]
            result[key] = kinds[0] if len(kinds) == 1 else kinds
        elif key == "enum" and isinstance(value, list):
            result[key] = [item for item in cast("list[Any]", value) if item is not None]
        elif key == "anyOf" and isinstance(value, list):
            options = [o for o in cast("list[Any]", value) if o != {"type": "null"}]
            if len(options) == 1:
                result.update(_without_null(options[0]))
            else:
                result[key] = _without_null(options)
        else:
            result[key] = _without_null(value)
    return result


def _lean(node: Any, keep_descriptions: bool, *, top: bool = False) -> Any:
    if isinstance(node, list):
        return [_lean(item, keep_descriptions) for item in cast("list[Any]", node)]
    if not isinstance(node, dict):
        return node
    source = cast("dict[str, Any]", node)
    result: dict[str, Any] = {}
    for key, value in source.items():
        if key == "title" and isinstance(value, str):
            continue
        if key == "description" and not keep_descriptions and not top:
            continue
        if key == "default" and value is None:
            continue
        if key in ("properties", "$defs", "definitions"):
            result[key] = {name: _lean(sub, keep_descriptions) for name, sub in cast("dict[str, Any]", value).items()}
            continue
        result[key] = _lean(value, keep_descriptions)
    return _merge_nullable(result)


def _merge_nullable(node: dict[str, Any]) -> dict[str, Any]:
    options = node.get("anyOf")
    if not isinstance(options, list) or len(options) != 2:  # pyright: ignore[reportUnknownArgumentType]
        return node
    kinds = cast("list[dict[str, Any]]", options)
    nulls = [o for o in kinds if o == {"type": "null"}]
    others = [o for o in kinds if o != {"type": "null"}]
    if len(nulls) != 1 or len(others) != 1 or "$ref" in others[0] or "anyOf" in others[0]:
        return node
    other = dict(others[0])
    kind = other.get("type")
    if isinstance(kind, str):
        other["type"] = [kind, "null"]
    elif isinstance(kind, list):
        other["type"] = [*cast("list[str]", kind), "null"]
    else:
        return node
    if isinstance(other.get("enum"), list):
        other["enum"] = [*cast("list[Any]", other["enum"]), None]
    merged = {k: v for k, v in node.items() if k != "anyOf"}
    merged.update(other)
    return merged
