"""Text PostgreSQL cannot store — a NUL character, a lone surrogate — refused where it comes in, by field.

Every input schema is built on `Storable` (or, for a lone query parameter, `StorableStr`), so that such text is
a 422 naming its field before anything is written, never a database error mid-transaction."""

from __future__ import annotations

from typing import Annotated, Any, Self

from pydantic import AfterValidator, BaseModel, StringConstraints, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError, ValidationError

Path = tuple[str | int, ...]
ERROR_TYPE = "unstorable_text"
CONTAINERS = (dict, list, tuple)


def unstorable(text: str) -> str | None:
    """What in `text` PostgreSQL cannot store, or None when it can."""
    if "\x00" in text:
        return "must not contain a NUL character (\\u0000)"
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return "must not contain a lone surrogate (\\ud800-\\udfff): it is no character"
    return None


def find_unstorable(value: Any, path: Path = ()) -> tuple[Path, str] | None:
    """The first string in `value` (nested lists and dicts, keys too) that cannot be stored: its path and what is
    wrong with it. Anything else (a model: it checked its own fields) is no text of its own."""
    if isinstance(value, str):
        problem = unstorable(value)
        return None if problem is None else (path, problem)
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str) and (problem := unstorable(key)):
                return path, f"a key {problem}"  # the key is no name to give
            if found := find_unstorable(item, (*path, key if isinstance(key, str | int) else str(key))):
                return found
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            if found := find_unstorable(item, (*path, index)):
                return found
    return None


def _refusal(path: Path, problem: str) -> ValidationError:
    # Raised as a ValidationError from a validator, its path is put after the location of what is validated.
    return ValidationError.from_exception_data(
        "text", [InitErrorDetails(type=PydanticCustomError(ERROR_TYPE, problem), loc=path, input=None)]
    )


def _refuse(value: Any) -> Any:
    if found := find_unstorable(value):
        path, problem = found
        raise _refusal(path, problem) if path else PydanticCustomError(ERROR_TYPE, problem)
    return value


class Storable(BaseModel):
    """The base of every input schema: a model whose fields are valid is refused if one holds text PostgreSQL
    cannot store, named by its field (as the client named it: its alias, if it has one) and the path within it.
    Nested models check their own fields. Once per model rather than per field: a CAD event has some forty."""

    @model_validator(mode="after")
    def _storable_text(self) -> Self:
        for name, value in self.__dict__.items():
            if isinstance(value, str):
                if "\x00" not in value and value.isascii():  # the common case, at once
                    continue
            elif not isinstance(value, CONTAINERS):
                continue
            if found := find_unstorable(value):
                path, problem = found
                field = type(self).model_fields.get(name)
                raise _refusal(((field and field.alias) or name, *path), problem)
        return self


# A string taken alone (a query parameter), with the same check.
StorableStr = Annotated[str, AfterValidator(_refuse)]


# A code that is read back in texts and spreadsheets, and named in URLs (an area): letters, digits, spaces and . - _,
# starting with a letter or digit, so that it can never begin what a spreadsheet takes for a formula (= + - @) nor
# hold a line break or a "/". 1 to 64 characters.
AREA_CODE = r"^[^\W_][\w .-]{0,63}$"
AreaCode = Annotated[str, StringConstraints(strip_whitespace=True, pattern=AREA_CODE)]
