"""How hooks and summaries name things: project-relative paths and a command's program.

Standard library only and tiny: post-tool-use imports it on every tool call.
"""

from __future__ import annotations

import os

MULTI_WORD_PROGRAMS = ("python", "python3", "npm", "uv", "make", "go", "cargo")


def relative(path: str, root: str) -> str:
    """`path` relative to the project root, or unchanged when it lies outside it."""
    try:
        rel = os.path.relpath(path, root)
    except ValueError:
        return path
    return path if rel.startswith("..") else rel


def program(command: str) -> str:
    """What a shell command runs (`pytest`, `npm test`), ignoring leading VAR=value words:
    a later success of the same program counts as the fix of an earlier failure."""
    words = [w for w in command.split() if "=" not in w.split("/")[0]]
    if not words:
        return ""
    return " ".join(words[:2]) if words[0] in MULTI_WORD_PROGRAMS else words[0]
