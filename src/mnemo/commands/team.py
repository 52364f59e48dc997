"""`mnemo team block …`: core-memory blocks shared by several projects (team standards, an
architecture-decision log). One block, attached to many agents: an update is seen by every
attached project at its next session start; detaching never deletes.
"""

from __future__ import annotations

import argparse
from importlib import resources
from typing import Any

from mnemo.commands import client, friendly
from mnemo.commands.projects import PROJECT_TAG

TEAM_TAG = "mnemo-team"
TEMPLATES = {"team_standards": "team_standards.md", "adr_log": "adr_log.md"}


def register(commands: Any) -> None:
    team = commands.add_parser("team", help="memory shared by several projects")
    kinds = team.add_subparsers(dest="what", metavar="WHAT", required=True)
    block = kinds.add_parser("block", help="shared core-memory blocks")
    actions = block.add_subparsers(dest="action", metavar="ACTION", required=True)

    p = actions.add_parser("create", help="create a shared block from a file or a template")
    p.add_argument("--label", required=True, help="e.g. team_standards, adr_log")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--file", help="text of the block")
    source.add_argument(
        "--template", choices=sorted(TEMPLATES), help="start from a shipped, editable template"
    )
    p.add_argument("--limit", type=int, default=8000, help="character limit (default 8000)")
    p.add_argument("--description", default="", help="what the block is for")
    p.add_argument("--server", metavar="URL", help="mnemo server (default: MNEMO_URL)")
    p.set_defaults(handler=create_block)

    for name, helptext in (
        ("attach", "share the block with projects"),
        ("detach", "stop sharing with projects (the block is kept)"),
    ):
        p = actions.add_parser(name, help=helptext)
        p.add_argument("label")
        where = p.add_mutually_exclusive_group(required=True)
        where.add_argument("--project", action="append", metavar="DIR", help="repeatable")
        where.add_argument("--agent", action="append", metavar="ID|NAME", help="repeatable")
        where.add_argument("--all", action="store_true", help="every Claude Code project")
        p.add_argument("--server", metavar="URL", help="mnemo server (default: MNEMO_URL)")
        p.set_defaults(handler=attach_block if name == "attach" else detach_block)

    p = actions.add_parser("update", help="replace or extend the text; every project sees it")
    p.add_argument("label")
    change = p.add_mutually_exclusive_group(required=True)
    change.add_argument("--file", help="new text of the block")
    change.add_argument("--append", metavar="TEXT", help="add a line at the end")
    p.add_argument("--server", metavar="URL", help="mnemo server (default: MNEMO_URL)")
    p.set_defaults(handler=update_block)

    p = actions.add_parser("list", help="shared blocks and who shares them")
    p.add_argument("--server", metavar="URL", help="mnemo server (default: MNEMO_URL)")
    p.set_defaults(handler=list_blocks)

    p = actions.add_parser("delete", help="delete a shared block (detaches it everywhere)")
    p.add_argument("label")
    p.add_argument("--yes", action="store_true", required=True, help="required: confirms")
    p.add_argument("--server", metavar="URL", help="mnemo server (default: MNEMO_URL)")
    p.set_defaults(handler=delete_block)


def template_text(name: str) -> str:
    return resources.files("mnemo.templates").joinpath(TEMPLATES[name]).read_text("utf-8")


def _team_block(memory: Any, label: str) -> dict[str, Any]:
    found = memory.shared_blocks(label=label, tags=[TEAM_TAG])
    if not found:
        raise ValueError(f"no team block labelled {label!r} (see `mnemo team block list`)")
    return found[0]


def _read(path: str) -> str:
    with open(path, encoding="utf-8") as file:
        return file.read()


def _targets(args: argparse.Namespace, memory: Any) -> list[dict[str, Any]]:
    if args.all:
        return memory.agents(tags=[PROJECT_TAG])
    if args.agent:
        return [memory.find_agent(a) for a in args.agent]
    return [memory.agent(memory.project_agent(directory)) for directory in args.project]


@friendly
def create_block(args: argparse.Namespace) -> int:
    value = _read(args.file) if args.file else template_text(args.template)
    if len(value) > args.limit:
        raise ValueError(f"the text has {len(value)} characters; --limit is {args.limit}")
    memory = client(args)
    if memory.shared_blocks(label=args.label, tags=[TEAM_TAG]):
        raise ValueError(f"a team block labelled {args.label!r} exists; use `update`")
    description = args.description or f"Shared by the team ({args.label})"
    block = memory.create_block(args.label, value, args.limit, description, tags=[TEAM_TAG])
    print(f"created team block {args.label} ({block['id']}, {len(value)} chars)")
    print(f"share it: mnemo team block attach {args.label} --all")
    return 0


@friendly
def attach_block(args: argparse.Namespace) -> int:
    return _share(args, attach=True)


@friendly
def detach_block(args: argparse.Namespace) -> int:
    code = _share(args, attach=False)
    print(f"the block {args.label} is kept; delete it with `mnemo team block delete`")
    return code


def _share(args: argparse.Namespace, attach: bool) -> int:
    memory = client(args)
    block = _team_block(memory, args.label)
    sharing = {a["id"] for a in memory.block_agents(block["id"])}
    for agent in _targets(args, memory):
        if (agent["id"] in sharing) == attach:
            print(f"  {agent['name']}: {'already' if attach else 'not'} attached")
            continue
        (memory.attach if attach else memory.detach)(agent["id"], block["id"])
        print(f"  {agent['name']}: {'attached' if attach else 'detached'}")
    return 0


@friendly
def update_block(args: argparse.Namespace) -> int:
    memory = client(args)
    block = _team_block(memory, args.label)
    shared = memory.block_agents(block["id"])
    if args.file:
        updated = memory.update_block(block["id"], value=_read(args.file))
    elif shared:  # the server's atomic append: concurrent appends never lose one another
        updated = memory.append_to_block(shared[0]["id"], args.label, args.append)
    else:
        updated = memory.update_block(block["id"], value=f"{block['value']}\n{args.append}")
    print(
        f"updated {args.label} ({len(updated['value'])}/{updated['limit']} chars); "
        f"{len(shared)} project(s) see it at their next session start"
    )
    return 0


@friendly
def list_blocks(args: argparse.Namespace) -> int:
    memory = client(args)
    blocks = memory.shared_blocks(tags=[TEAM_TAG])
    if not blocks:
        print(
            "no team blocks: mnemo team block create --label team_standards --template "
            "team_standards"
        )
        return 0
    for block in blocks:
        agents = memory.block_agents(block["id"])
        print(f"{block['label']}  ({block['id']}, {len(block['value'])}/{block['limit']} chars)")
        for agent in agents:
            print(f"  shared with {agent['name']}")
        if not agents:
            print("  not attached to any project")
    return 0


@friendly
def delete_block(args: argparse.Namespace) -> int:
    memory = client(args)
    block = _team_block(memory, args.label)
    memory.delete_block(block["id"])
    print(f"deleted team block {args.label}")
    return 0
