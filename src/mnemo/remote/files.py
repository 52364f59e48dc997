"""JSON files in the state directory, replaced atomically (standard library only)."""

from __future__ import annotations

import json
import os

TYPE_CHECKING = False  # typing costs a hook ~4 ms to import; annotations only
if TYPE_CHECKING:
    from typing import Any


def read_json(path: str) -> Any:
    with open(path, encoding="utf-8") as file:
        return json.load(file)


def write_json(path: str, data: Any) -> None:
    """Replace the file atomically: a reader sees the old or the new content, never half."""
    temporary = f"{path}.{os.getpid()}.tmp"
    with open(temporary, "w", encoding="utf-8") as file:
        json.dump(data, file)
    os.replace(temporary, path)
