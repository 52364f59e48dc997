"""`mnemo statusline`: a Claude Code status line showing this project's memory at a glance.

Claude Code runs it after each assistant message with the session as JSON on stdin and shows
the first line it prints. Standard library only and never creates anything: the cached agent,
one count request with the hooks' connect timeout, the session's state file.
"""

from __future__ import annotations

import json
import os
import sys

from mnemo.claude import state
from mnemo.remote import project
from mnemo.remote.client import Client
from mnemo.remote.config import ClientConfig, state_dir
from mnemo.remote.errors import ApiError, Unreachable

TYPE_CHECKING = False  # typing costs a hook ~4 ms to import; annotations only
if TYPE_CHECKING:
    from typing import Any


def line(payload: dict[str, Any], config: ClientConfig) -> str:
    workspace = payload.get("workspace") if isinstance(payload.get("workspace"), dict) else {}
    cwd = str(workspace.get("current_dir") or payload.get("cwd") or os.getcwd())
    states = state_dir()
    client = Client(
        config.url,
        config.api_key,
        config.read_timeout,
        connect_timeout=config.connect_timeout,
        spool_dir=os.path.join(states, "spool"),
    )
    waiting = client.pending()
    queued = f" · {waiting} writes waiting" if waiting else ""
    agent = config.agent_id or project.cached_agent(states, project.project_root(cwd))
    if not agent:
        return f"mnemo: no memory for this project yet{queued}"
    try:
        count = client.count(agent)
    except Unreachable:
        return f"mnemo: server down{queued}"
    except ApiError as exc:
        return f"mnemo: {exc}"[:120]
    recalled = len(state.load(states, str(payload.get("session_id") or "")).get("injected", []))
    return f"mnemo: {count:,} memories · {recalled} recalled this session{queued}"


def run(stdin: Any = None, stdout: Any = None) -> int:
    """Print the status line; always exit 0 (a broken status line must not bother the user)."""
    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout
    try:
        payload = json.loads(stdin.read() or "{}")
        text = line(payload if isinstance(payload, dict) else {}, ClientConfig.load())
    except (ValueError, OSError) as exc:
        text = f"mnemo: {exc}"[:120]
    stdout.write(text + "\n")
    return 0
