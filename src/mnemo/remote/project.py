"""Project identity and the project's agent (standard library only).

A project is its git repository (a worktree maps to the main repository, found through the
`.git` file's `gitdir:` and the worktree's `commondir`), or the folder itself outside git. One
agent per project, created on first use, its id cached in the state directory.
"""

from __future__ import annotations

import os
import re

from mnemo.remote.errors import ApiError
from mnemo.remote.files import read_json, write_json

# The built-in SHA-256 module: hashlib would load OpenSSL first, ~4 ms of every hook process.
try:
    from _sha2 import sha256  # Python 3.12+
except ImportError:
    try:
        from _sha256 import sha256  # Python 3.11
    except ImportError:
        from hashlib import sha256

TYPE_CHECKING = False  # typing costs a hook ~4 ms to import; annotations only
if TYPE_CHECKING:
    from mnemo.remote.client import Client

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


def project_root(cwd: str) -> str:
    """The main repository's root for any directory inside a repository or worktree."""
    start = directory = os.path.realpath(cwd)
    while True:
        dot_git = os.path.join(directory, ".git")
        if os.path.isdir(dot_git):
            return directory
        if os.path.isfile(dot_git):
            return _main_repository(directory, dot_git) or directory
        parent = os.path.dirname(directory)
        if parent == directory:
            return start
        directory = parent


def _main_repository(directory: str, dot_git: str) -> str | None:
    text = _head(dot_git, 4000)
    if not text.startswith("gitdir:"):
        return None
    git_dir = os.path.realpath(os.path.join(directory, text.removeprefix("gitdir:").strip()))
    common = os.path.join(git_dir, "commondir")
    if os.path.isfile(common):
        shared = os.path.realpath(os.path.join(git_dir, _head(common, 4000)))
        if os.path.basename(shared) == ".git":
            return os.path.dirname(shared)
    return None


def project_key(root: str) -> str:
    return sha256(os.fspath(root).encode()).hexdigest()[:16]


def name_of(root: str) -> str:
    return os.path.basename(root)


def agent_name(root: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9_-]+", "-", name_of(root)).strip("-") or "root"
    return f"project-{slug}-{project_key(root)[:8]}"


def scan_project_context(root: str, limit: int = BLOCK_LIMITS["project_context"]) -> str:
    """What the project says about itself: CLAUDE.md / README head and its manifest files."""
    parts = [f"Project: {os.path.basename(root)} ({root})"]
    budget = limit - len(parts[0]) - 1
    for name in CONTEXT_FILES:
        path = os.path.join(root, name)
        if os.path.isfile(path):
            text = _head(path, 1500)
            parts.append(f"{name}:\n{text}")
            break
    manifests = [name for name in MANIFESTS if os.path.isfile(os.path.join(root, name))]
    if manifests:
        parts.append("Manifests: " + ", ".join(manifests))
        for name in manifests[:2]:
            parts.append(f"{name}:\n{_head(os.path.join(root, name), 600)}")
    text = "\n\n".join(parts)
    return text if len(text) <= budget else text[:budget].rsplit("\n", 1)[0]


def _head(path: str, chars: int) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            text = handle.read(chars + 200)
    except OSError:
        return ""
    text = text.strip()
    return text if len(text) <= chars else text[:chars].rsplit("\n", 1)[0] + "\n…"


def _cache_path(state: str, root: str) -> str:
    return os.path.join(state, "projects", f"{project_key(root)}.json")


def cached_agent(state: str, root: str) -> str | None:
    try:
        return read_json(_cache_path(state, root)).get("agent_id")
    except (OSError, ValueError, AttributeError):
        return None


def forget_cached(state: str, agent_id: str) -> None:
    """Drop every cached project → `agent_id` mapping, so the next session starts afresh."""
    folder = os.path.join(state, "projects")
    for name in os.listdir(folder) if os.path.isdir(folder) else []:
        path = os.path.join(folder, name)
        try:
            if read_json(path).get("agent_id") == agent_id:
                os.unlink(path)
        except (OSError, ValueError, AttributeError):
            continue


def remember_agent(state: str, root: str, agent_id: str) -> None:
    path = _cache_path(state, root)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    write_json(path, {"agent_id": agent_id, "root": str(root)})


def ensure_agent(
    client: Client, state: str, root: str, verify: bool = False, create: bool = True
) -> str:
    """The project's agent id: cached, found by name, or (if `create`) created with its four
    blocks. Raises Unreachable when the server is down and nothing is cached, LookupError when
    the project has no agent and `create` is false."""
    cached = cached_agent(state, root)
    if cached and not verify:
        return cached
    if cached:
        try:
            client.agent(cached)
            return cached
        except ApiError as exc:
            if exc.status != 404:
                raise
    name = agent_name(root)
    found = client.agents(name=name, limit=1)
    if found:
        agent_id = found[0]["id"]
    elif not create:
        raise LookupError(
            f"no memory for the project at {root} yet (a Claude Code session there creates it)"
        )
    else:
        created = client.create_agent(
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
                        "value": f"Claude Code, working on {name_of(root)}. Memory by mnemo.",
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
        same = client.agents(name=name, limit=1)
        if same and same[0]["id"] != agent_id:
            client.delete_agent(agent_id)
            agent_id = same[0]["id"]
    remember_agent(state, root, agent_id)
    return agent_id


def _human() -> str:
    name = os.environ.get("GIT_AUTHOR_NAME") or os.environ.get("USER") or ""
    return f"User: {name}" if name else ""
