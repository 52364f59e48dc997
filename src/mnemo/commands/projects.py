"""`mnemo projects list | show | forget`: every project's memory at a glance."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from mnemo.commands import agent_id, client, friendly, preview, target_options, when

PROJECT_TAG = "claude-code"


def register(commands: Any) -> None:
    projects = commands.add_parser("projects", help="every project's memory: list, show, forget")
    actions = projects.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = actions.add_parser("list", help="each project: agent, size, last session")
    p.add_argument("--server", metavar="URL", help="mnemo server (default: MNEMO_URL)")
    p.set_defaults(handler=list_projects)
    p = actions.add_parser("show", help="one project's blocks, size and recent sessions")
    target_options(p)
    p.set_defaults(handler=show_project)
    p = actions.add_parser(
        "forget", help="delete a project's memory (its agent, passages, messages)"
    )
    target_options(p)
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    p.set_defaults(handler=forget_project)


def _last_session(memory: Any, agent: str) -> dict[str, Any] | None:
    return next(iter(memory.passages(agent, type="session_summary", limit=1)), None)


@friendly
def list_projects(args: argparse.Namespace) -> int:
    memory = client(args)
    agents = memory.agents(tags=[PROJECT_TAG])
    if not agents:
        print("no projects yet: run Claude Code in a project after `mnemo install`")
        return 0
    print(f"{'project':28} {'memories':>8} {'core chars':>10}  {'last session':16}  path")
    for agent in agents:
        blocks = memory.blocks(agent["id"])
        last = _last_session(memory, agent["id"])
        path = (agent.get("metadata") or {}).get("mnemo_project", "")
        print(
            f"{agent['name'][:28]:28} {memory.count(agent['id']):>8} "
            f"{sum(len(b['value']) for b in blocks):>10}  "
            f"{when(last['created_at']) if last else '-':16}  {path}"
        )
    return 0


@friendly
def show_project(args: argparse.Namespace) -> int:
    memory = client(args)
    agent = memory.agent(agent_id(args, memory))
    path = (agent.get("metadata") or {}).get("mnemo_project", "-")
    print(f"{agent['name']}  ({agent['id']})\npath: {path}")
    print(f"memories: {memory.count(agent['id'])}")
    print("core memory blocks:")
    for block in memory.blocks(agent["id"]):
        shared = len(memory.block_agents(block["id"])) > 1
        print(
            f"  {block['label']:20} {len(block['value']):>6}/{block['limit']} chars"
            + ("  (shared)" if shared else "")
        )
    print("recent sessions:")
    sessions = list(memory.passages(agent["id"], type="session_summary", limit=3))
    for passage in sessions:
        print(f"  {when(passage['created_at'])}  {preview(passage['text'])}")
    if not sessions:
        print("  none yet")
    return 0


@friendly
def forget_project(args: argparse.Namespace) -> int:
    memory = client(args)
    agent = memory.agent(agent_id(args, memory))
    if not args.yes:
        if not sys.stdin.isatty():
            print("mnemo: refusing to delete without --yes (no terminal to ask)", file=sys.stderr)
            return 2
        answer = input(
            f"Delete all memory of {agent['name']} ({memory.count(agent['id'])} memories)? [y/N] "
        )
        if answer.strip().lower() not in ("y", "yes"):
            print("kept")
            return 1
    memory.delete_agent(agent["id"])
    from mnemo.remote import project
    from mnemo.remote.config import state_dir

    project.forget_cached(state_dir(), agent["id"])
    print(f"forgot {agent['name']} ({agent['id']}); shared blocks stay with their other agents")
    return 0
