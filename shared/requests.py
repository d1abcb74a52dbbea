"""Reading request bodies that a route takes raw (signed webhooks, calendars), never more than it allows, and
saying in the OpenAPI schema what such a body is; and the id of a row, as a path names it."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path, Request
from pydantic import BaseModel

from shared.problems import PayloadTooLarge

# A row's id (PostgreSQL's integer): a number past what one can hold names no row, a 422 rather than the
# database's error.
RowId = Annotated[int, Path(ge=1, le=2**31 - 1)]


async def read_bounded_body(request: Request, limit: int) -> bytes:
    """Read at most `limit` bytes, refusing early on a declared or streamed excess."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"The body may be at most {limit} bytes.")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"The body may be at most {limit} bytes.")
        chunks.append(chunk)
    return b"".join(chunks)


def documented_body(model: type[BaseModel], media_type: str = "application/json") -> dict[str, Any]:
    """`openapi_extra` for a route that reads its body itself (a signature is checked over its bytes before any
    of it is read): the body documented as the model that reads it, with the model's examples. Inlined, nested
    models too: FastAPI names the app's other schemas, and these must not take one of those names."""
    schema = model.model_json_schema()
    definitions = schema.pop("$defs", {})
    return {"requestBody": {"required": True, "content": {media_type: {"schema": inlined(schema, definitions)}}}}


# Keywords whose values are data, not schemas: an example's "$ref" (EIDO has them) is no reference.
VALUES = frozenset({"examples", "example", "default", "const", "enum"})


def inlined(node: Any, definitions: dict[str, Any], within: tuple[str, ...] = ()) -> Any:
    """A JSON schema with each reference to one of `definitions` replaced by that definition."""
    if isinstance(node, list):
        return [inlined(item, definitions, within) for item in node]
    if not isinstance(node, dict):
        return node
    reference = node.get("$ref")
    if not (isinstance(reference, str) and reference.startswith("#/$defs/")):  # a property may be named "$ref"
        return {key: value if key in VALUES else inlined(value, definitions, within) for key, value in node.items()}
    name = reference.removeprefix("#/$defs/")
    if name in within:
        raise ValueError(f"{name} contains itself: a schema that refers to itself cannot be inlined")
    beside = {key: value for key, value in node.items() if key != "$ref"}
    return {**inlined(definitions[name], definitions, (*within, name)), **inlined(beside, definitions, within)}


def form_example(fields: dict[str, str]) -> dict[str, Any]:
    """`openapi_extra` giving a form's example body: FastAPI builds a form's schema from its fields, not a
    model's, so there is no model to hold one."""
    return {"requestBody": {"content": {"application/x-www-form-urlencoded": {"example": fields}}}}
