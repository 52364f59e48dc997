"""CLI commands built on `mnemo.Client`: projects, team, record, ingest, search, prune.

Each module has `register(commands)` adding its sub-commands. Every command talks to the server
over HTTP (MNEMO_URL, MNEMO_API_KEY or the config file) and picks its agent the same way:
`--agent ID|NAME`, else MNEMO_AGENT_ID, else the project holding `--project DIR` (default: here).
"""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Callable
from typing import Any

Handler = Callable[[argparse.Namespace], int]


def target_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("which memory")
    group.add_argument("--project", metavar="DIR", help="the project in DIR (default: here)")
    group.add_argument("--agent", metavar="ID|NAME", help="an agent by id or name")
    group.add_argument(
        "--server", metavar="URL", help="mnemo server (default: MNEMO_URL or http://127.0.0.1:8283)"
    )


def client(args: argparse.Namespace) -> Any:
    from mnemo.remote.client import Client

    return Client(getattr(args, "server", None))


def agent_id(args: argparse.Namespace, memory: Any, create: bool = False) -> str:
    """The agent the command works on: --agent, MNEMO_AGENT_ID, or the project's. Only
    commands that write (`create`) make a project's agent; reading never does."""
    from mnemo.remote.config import ClientConfig

    chosen = getattr(args, "agent", None) or ClientConfig.load().agent_id
    if chosen:
        return memory.find_agent(chosen)["id"]
    return memory.project_agent(getattr(args, "project", None) or ".", create=create)


def friendly(handler: Handler) -> Handler:
    """Expected failures (bad input, unreachable or refusing server) end as one line on stderr
    and exit status 2, not a traceback."""

    @functools.wraps(handler)
    def run(args: argparse.Namespace) -> int:
        from mnemo.remote.errors import ClientError

        try:
            return handler(args)
        except (ClientError, ValueError, OSError) as exc:  # ValueError: bad input, e.g. a record
            print(f"mnemo: {exc}", file=sys.stderr)
            return 2

    return run


def preview(text: str, width: int = 100) -> str:
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 1] + "…"


def when(iso: str | None) -> str:
    return (iso or "")[:16].replace("T", " ")
