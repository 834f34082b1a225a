"""Canonical JSON: one byte sequence for one value, so hashes and signatures are reproducible.

The form is Python's ``json.dumps`` with sorted keys, no whitespace, UTF-8 (not ``\\u``
escapes) and no trailing newline. Floats are refused: their text form differs between
languages and libraries, so a court expert re-serialising a document elsewhere could get
other bytes. Integers, strings, booleans, null, lists and string-keyed objects are enough
for every record this toolkit writes.

Keys are sorted by Unicode code point (Python's order). This is not RFC 8785 (which sorts
by UTF-16 code units); the two differ only for keys mixing astral characters with
characters above U+E000, which none of our own field names do.

Nesting is bounded: a document whose arrays and objects nest more than
:data:`MAX_DEPTH` (100) levels deep is refused before it is parsed, so hostile input
cannot exhaust the parser's stack (``json`` recurses once per level). The formats
themselves are shallow: a manifest's own structure is three levels, custody entries and
heads two, and page-supplied provenance is cut at 40 levels when it is captured.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

__all__ = ["MAX_DEPTH", "canonical_json", "check_depth", "is_canonical", "parse_canonical"]

# Deepest nesting of arrays/objects accepted when parsing (the top level is depth 1).
MAX_DEPTH = 100
_OPENERS = ("[", "{")
_STRUCTURE = re.compile(r'["\[\]{}]')
# The rest of a JSON string after its opening quote, up to and including the closing one.
_STRING_TAIL = re.compile(r'(?:[^"\\]++|\\.)*+"', re.DOTALL)


def canonical_json(obj: object) -> bytes:
    """The canonical UTF-8 bytes of ``obj``.

    Raises TypeError for floats, non-string keys and values JSON cannot represent, and
    ValueError for strings that are not valid Unicode (lone surrogates).
    """
    _reject_non_canonical_values(obj)
    text = json.dumps(
        obj,
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
        default=_mapping_as_dict,
    )
    # A lone surrogate survives json.dumps but cannot be UTF-8: UnicodeEncodeError is a ValueError.
    return text.encode("utf-8")


def parse_canonical(data: bytes) -> Any:
    """Decode ``data``, insisting it is exactly the canonical form of what it decodes to.

    Raises ValueError (with the reason) otherwise: invalid UTF-8 or JSON, duplicate keys,
    floats, NaN/Infinity, whitespace, unsorted keys, ``\\u`` escapes where UTF-8 is used …
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8 (byte {exc.start})") from None
    check_depth(text)
    try:
        value = json.loads(
            text,
            parse_float=_refuse_float,
            parse_constant=_refuse_constant,
            object_pairs_hook=_dict_without_duplicates,
        )
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc.msg} at character {exc.pos}") from None
    try:
        again = canonical_json(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"not representable canonically: {exc}") from None
    if again != data:
        raise ValueError("JSON, but not in canonical form (spacing, key order or escaping differ)")
    return value


def check_depth(text: str, limit: int = MAX_DEPTH) -> None:
    """ValueError if arrays and objects in the JSON ``text`` nest more than ``limit`` deep.

    A linear scan of the brackets outside strings, so it is safe on any input: call it
    before ``json.loads`` on untrusted text. Text that is not JSON may be refused here or
    left for the parser to refuse; it is never let through deeper than ``limit``.
    """
    if sum(text.count(opener) for opener in _OPENERS) <= limit:
        return  # cannot nest deeper than it has brackets
    depth, pos = 0, 0
    while (found := _STRUCTURE.search(text, pos)) is not None:
        char, pos = found.group(), found.end()
        if char == '"':
            tail = _STRING_TAIL.match(text, pos)
            if tail is None:
                return  # an unterminated string: the parser stops there, not deeper
            pos = tail.end()
        elif char in _OPENERS:
            depth += 1
            if depth > limit:
                raise ValueError(
                    f"nested more than {limit} levels deep (at character {found.start()})"
                )
        else:
            depth -= 1


def is_canonical(data: bytes) -> bool:
    """True if ``data`` is exactly the canonical JSON of the value it encodes."""
    try:
        parse_canonical(data)
    except ValueError:
        return False
    return True


def _reject_non_canonical_values(obj: object) -> None:
    # Iterative, so hostile nesting depth cannot exhaust the Python stack here;
    # json.dumps itself still bounds depth with its own RecursionError.
    stack: list[object] = [obj]
    while stack:
        item = stack.pop()
        if isinstance(item, float):
            raise TypeError(
                f"floats are not allowed in canonical JSON (got {item!r}); "
                "use an integer or a string"
            )
        if isinstance(item, Mapping):
            for key, value in item.items():
                # json.dumps would turn 1 into "1", making {1: x} and {"1": x} one document.
                if not isinstance(key, str):
                    raise TypeError(f"object keys must be strings in canonical JSON (got {key!r})")
                stack.append(value)
        elif isinstance(item, list | tuple):
            stack.extend(item)


def _mapping_as_dict(obj: object) -> object:
    if isinstance(obj, Mapping):
        return dict(obj)
    raise TypeError(f"{type(obj).__name__} cannot be written as canonical JSON")


def _refuse_float(text: str) -> object:
    raise ValueError(f"float {text} (canonical JSON has integers only)")


def _refuse_constant(text: str) -> object:
    raise ValueError(f"{text} is not JSON")


def _dict_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result
