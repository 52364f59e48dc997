"""Project identity and the project's agent (standard library only).

A project is its git repository (a worktree maps to the main repository, found through the
`.git` file's `gitdir:` and the worktree's `commondir`), or the folder itself outside git. One
agent per project, created on first use, its id cached in the state directory.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

from mnemo.client import ApiError, MnemoClient

TYPE_CHECKING = False  # typing costs a hook ~4 ms to import; annotations only
if TYPE_CHECKING:
    from typing import Any

CONTEXT_FILES = ("CLAUDE.md", "README.md", "README.rst", "README.txt", "README")
MANIFESTS = (
    "pyproject.toml",
    "package.json",
    "Cargo.toml",
    "go.mod",
    "pom.xml",
    "Gemfile",
    "composer.json",
)
BLOCK_LIMITS = {"human": 2000, "persona": 2000, "project_context": 4000, "learnings": 4000}


def project_root(cwd: str) -> Path:
    """The main repository's root for any directory inside a repository or worktree."""
    start = Path(cwd).resolve()
    for directory in (start, *start.parents):
        dot_git = directory / ".git"
        if dot_git.is_dir():
            return directory
        if dot_git.is_file():
            return _main_repository(directory, dot_git) or directory
    return start


def _main_repository(directory: Path, dot_git: Path) -> Path | None:
    try:
        text = dot_git.read_text().strip()
    except OSError:
        return None
    if not text.startswith("gitdir:"):
        return None
    git_dir = Path(text.removeprefix("gitdir:").strip())
    if not git_dir.is_absolute():
        git_dir = (directory / git_dir).resolve()
    common = git_dir / "commondir"
    if common.is_file():
        shared = Path(common.read_text().strip())
        shared = shared if shared.is_absolute() else (git_dir / shared).resolve()
        if shared.name == ".git":
            return shared.parent
    return None


def project_key(root: Path) -> str:
    return hashlib.sha256(str(root).encode()).hexdigest()[:16]


def agent_name(root: Path) -> str:
    slug = re.sub(r"[^A-Za-z0-9_-]+", "-", root.name).strip("-") or "root"
    return f"project-{slug}-{project_key(root)[:8]}"


def scan_project_context(root: Path, limit: int = BLOCK_LIMITS["project_context"]) -> str:
    """What the project says about itself: CLAUDE.md / README head and its manifest files."""
    parts = [f"Project: {root.name} ({root})"]
    budget = limit - len(parts[0]) - 1
    for name in CONTEXT_FILES:
        path = root / name
        if path.is_file():
            text = _head(path, 1500)
            parts.append(f"{name}:\n{text}")
            break
    manifests = [name for name in MANIFESTS if (root / name).is_file()]
    if manifests:
        parts.append("Manifests: " + ", ".join(manifests))
        for name in manifests[:2]:
            parts.append(f"{name}:\n{_head(root / name, 600)}")
    text = "\n\n".join(parts)
    return text if len(text) <= budget else text[:budget].rsplit("\n", 1)[0]


def _head(path: Path, chars: int) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            text = handle.read(chars + 200)
    except OSError:
        return ""
    text = text.strip()
    return text if len(text) <= chars else text[:chars].rsplit("\n", 1)[0] + "\n…"


def _cache_path(state: Path, root: Path) -> Path:
    return state / "projects" / f"{project_key(root)}.json"


def cached_agent(state: Path, root: Path) -> str | None:
    try:
        return json.loads(_cache_path(state, root).read_text()).get("agent_id")
    except (OSError, ValueError):
        return None


def remember_agent(state: Path, root: Path, agent_id: str) -> None:
    path = _cache_path(state, root)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps({"agent_id": agent_id, "root": str(root)}))
    os.replace(temporary, path)


def ensure_agent(client: MnemoClient, state: Path, root: Path, verify: bool = False) -> str:
    """The project's agent id: cached, found by name, or created with its four blocks.
    Raises Unreachable when the server is down and nothing is cached."""
    cached = cached_agent(state, root)
    if cached and not verify:
        return cached
    if cached:
        try:
            client.request("GET", f"/v1/agents/{cached}")
            return cached
        except ApiError as exc:
            if exc.status != 404:
                raise
    name = agent_name(root)
    found: list[dict[str, Any]] = client.request(
        "GET", "/v1/agents/", query={"name": name, "order": "asc", "limit": 1}
    )
    if found:
        agent_id = found[0]["id"]
    else:
        created = client.request(
            "POST",
            "/v1/agents/",
            {
                "name": name,
                "description": f"Claude Code memory for {root}",
                "tags": ["mnemo", "claude-code"],
                "metadata": {"mnemo_project": str(root)},
                "memory_blocks": [
                    {
                        "label": "human",
                        "value": _human(),
                        "limit": BLOCK_LIMITS["human"],
                        "description": "Who the user is and how they like to work",
                    },
                    {
                        "label": "persona",
                        "value": f"Claude Code, working on {root.name}. Memory by mnemo.",
                        "limit": BLOCK_LIMITS["persona"],
                        "description": "How the assistant works here",
                    },
                    {
                        "label": "project_context",
                        "value": scan_project_context(root),
                        "limit": BLOCK_LIMITS["project_context"],
                        "description": "What this project is",
                    },
                    {
                        "label": "learnings",
                        "value": "",
                        "limit": BLOCK_LIMITS["learnings"],
                        "description": "Lessons from past sessions, newest last",
                    },
                ],
            },
        )
        agent_id = created["id"]
        # Two sessions starting at once may both create one: keep the oldest, drop ours.
        same = client.request(
            "GET", "/v1/agents/", query={"name": name, "order": "asc", "limit": 1}
        )
        if same and same[0]["id"] != agent_id:
            client.request("DELETE", f"/v1/agents/{agent_id}")
            agent_id = same[0]["id"]
    remember_agent(state, root, agent_id)
    return agent_id


def _human() -> str:
    name = os.environ.get("GIT_AUTHOR_NAME") or os.environ.get("USER") or ""
    return f"User: {name}" if name else ""
