"""The one input check before anything is stored or searched: every value that passes can be
written, read back and serialised as JSON by both stores. Each function names the offending
field in its error; NUL characters are dropped from stored strings, lone surrogates refused.

The hard ceilings below are what the stores can represent; the schemas in api/schemas.py use the
same constants, so the OpenAPI description matches what is enforced. Sizes that are a matter of
policy are settings (config.py: max_metadata_bytes, max_tags, ...).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from mnemo.errors import InvalidInput, TooLarge

MAX_INT = 2**63 - 1  # a 64-bit integer column or JSON number in either store
MAX_DEPTH = 32  # nesting of metadata objects and lists
MAX_KEY_CHARS = 200  # a metadata key or filter key
MAX_TAG_CHARS = 200
MAX_LABEL_CHARS = 100
MAX_BLOCK_LIMIT = 10_000_000  # characters a block may be allowed to hold
MAX_FILTER_KEYS = 50
MAX_PRUNE_DAYS = 100_000  # older_than_days: about 270 years
EARLIEST = datetime(1, 1, 2, tzinfo=UTC)  # a day from the ends, so no offset can overflow
LATEST = datetime(9999, 12, 30, tzinfo=UTC)


def string(name: str, value: str) -> str:
    """`value` without NUL characters; a lone surrogate (not encodable as UTF-8) is refused."""
    if not isinstance(value, str):
        raise InvalidInput(f"{name}: must be a string, got {type(value).__name__}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidInput(
            f"{name}: contains a lone surrogate (\\u{ord(value[exc.start]):04x}), "
            "which is not valid Unicode"
        ) from None
    return value.replace("\x00", "") if "\x00" in value else value


def name_like(name: str, value: str, max_chars: int) -> str:
    """A short identifier-like string: no control characters, at most `max_chars`."""
    clean = string(name, value).strip()
    if not clean:
        raise InvalidInput(f"{name}: must not be empty")
    if len(clean) > max_chars:
        raise InvalidInput(f"{name}: at most {max_chars} characters, got {len(clean)}")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in clean):
        raise InvalidInput(f"{name}: must not contain control characters")
    return clean


def label(value: str) -> str:
    """A block label: it is a path segment of /v1/agents/{id}/core-memory/blocks/{label}."""
    clean = name_like("label", value, MAX_LABEL_CHARS)
    if "/" in clean or clean in (".", ".."):
        raise InvalidInput(f"label: must not contain '/' or be '.' or '..', got {clean!r}")
    return clean


def tags(values: Iterable[str], max_tags: int, name: str = "tags") -> list[str]:
    """Distinct tags in their first order."""
    out = list(
        dict.fromkeys(name_like(f"{name}[{i}]", tag, MAX_TAG_CHARS) for i, tag in enumerate(values))
    )
    if len(out) > max_tags:
        raise InvalidInput(f"{name}: at most {max_tags} tags, got {len(out)} (max_tags)")
    return out


def data(name: str, value: Any, max_bytes: int) -> dict[str, Any]:
    """A metadata object: string keys, JSON values (finite numbers, 64-bit integers), at most
    MAX_DEPTH deep and `max_bytes` as JSON."""
    if not isinstance(value, dict):
        raise InvalidInput(f"{name}: must be a JSON object, got {type(value).__name__}")
    clean = _json_value(name, value, 0)
    size = len(json.dumps(clean, ensure_ascii=False, allow_nan=False).encode())
    if size > max_bytes:
        raise TooLarge(
            f"{name}: {size} bytes as JSON is over the limit of {max_bytes} (max_metadata_bytes)"
        )
    return clean


def _json_value(name: str, value: Any, depth: int) -> Any:
    if depth > MAX_DEPTH:
        raise InvalidInput(f"{name}: nested more than {MAX_DEPTH} levels deep")
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return integer(name, value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidInput(f"{name}: {value} is not a JSON number (NaN and Infinity are not)")
        return value
    if isinstance(value, str):
        return string(name, value)
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidInput(f"{name}: keys must be strings, got {key!r}")
            out[metadata_key(f"{name} key", key)] = _json_value(f"{name}.{key}", item, depth + 1)
        return out
    if isinstance(value, (list, tuple)):
        return [_json_value(f"{name}[{i}]", item, depth + 1) for i, item in enumerate(value)]
    raise InvalidInput(f"{name}: {type(value).__name__} is not a JSON value")


def metadata_key(name: str, key: str) -> str:
    string(name, key)
    if not key or len(key) > MAX_KEY_CHARS:
        raise InvalidInput(f"{name}: must be 1 to {MAX_KEY_CHARS} characters, got {len(key)}")
    if "\x00" in key or '"' in key or any(ord(ch) < 32 for ch in key):
        raise InvalidInput(f"{name}: must not contain quotes or control characters: {key!r}")
    return key


def integer(name: str, value: int, low: int = -MAX_INT - 1, high: int = MAX_INT) -> int:
    if value < low or value > high:
        raise InvalidInput(f"{name}: must be between {low} and {high}, got {value}")
    return value


def moment(name: str, value: datetime) -> datetime:
    """`value` in UTC, naive taken as UTC, between year 1 and 9999 in every time zone."""
    try:
        utc = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError:
        utc = None
    if utc is None or not EARLIEST <= utc <= LATEST:
        raise InvalidInput(
            f"{name}: {value.isoformat()} is out of range; use a time between "
            f"{EARLIEST.date()} and {LATEST.date()} (UTC)"
        )
    return utc


def filter_tags(values: list[str]) -> list[str]:
    if len(values) > MAX_FILTER_KEYS:
        raise InvalidInput(f"tags: filter by at most {MAX_FILTER_KEYS} tags, got {len(values)}")
    return [string(f"tags[{i}]", tag) for i, tag in enumerate(values)]


def metadata_filter(filters: dict[str, Any]) -> dict[str, Any]:
    """Equality filters on top-level metadata keys: scalar values, or a tuple of alternatives
    (how a query string's `42` stands for 42 or "42")."""
    if len(filters) > MAX_FILTER_KEYS:
        raise InvalidInput(f"metadata: at most {MAX_FILTER_KEYS} filter keys, got {len(filters)}")
    clean: dict[str, Any] = {}
    for key, wanted in filters.items():
        field = f"metadata.{key}"
        metadata_key("metadata filter key", key)
        items = []
        for item in wanted if isinstance(wanted, tuple) else (wanted,):
            if isinstance(item, (dict, list)):
                raise InvalidInput(f"{field}: filter values are strings, numbers, booleans or null")
            items.append(_json_value(field, item, 0))
        clean[key] = tuple(items) if isinstance(wanted, tuple) else items[0]
    return clean


def is_id_like(value: str) -> bool:
    """Whether `value` could be an id (a pagination cursor must be one to be looked up)."""
    return 0 < len(value) <= 100 and all(
        ch.isascii() and (ch.isalnum() or ch in "-_") for ch in value
    )
