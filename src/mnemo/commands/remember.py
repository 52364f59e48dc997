"""`mnemo remember` and `mnemo forget`: one memory in, one memory out, from the shell or from
Claude Code's /mnemo:remember and /mnemo:forget."""

from __future__ import annotations

import argparse
from typing import Any

from mnemo.commands import agent_id, client, friendly, preview, target_options


def register(commands: Any) -> None:
    p = commands.add_parser(
        "remember",
        help="store one memory in the project's long-term memory",
        description="Store TEXT as a memory of the project (secrets are redacted on the server). "
        "An identical memory of the same type is merged, not stored twice.",
    )
    p.add_argument("text", nargs="+", help="what to remember (the words are joined)")
    p.add_argument("--type", default="note", help="kind of memory: note, decision, convention, …")
    p.add_argument("--tag", action="append", help="a tag to filter by later (repeatable)")
    target_options(p)
    p.set_defaults(handler=remember_command)

    p = commands.add_parser(
        "forget",
        help="delete one memory by its id",
        description="Delete the memory PASSAGE_ID (from `mnemo search`) of the project.",
    )
    p.add_argument("passage_id", metavar="PASSAGE_ID")
    target_options(p)
    p.set_defaults(handler=forget_command)


@friendly
def remember_command(args: argparse.Namespace) -> int:
    text = " ".join(args.text).strip()
    if not text:
        raise ValueError("nothing to remember: give the text")
    memory = client(args)
    agent = agent_id(args, memory, create=True)
    stored = memory.remember(
        agent, text, type=args.type, tags=args.tag, metadata={"source": "cli"}, dedupe=True
    )
    verb = "Already remembered" if stored.get("merged") else "Remembered"
    print(f"{verb} as {stored['id']}: {preview(stored['text'], 80)}")
    return 0


@friendly
def forget_command(args: argparse.Namespace) -> int:
    memory = client(args)
    agent = agent_id(args, memory)
    gone = memory.passage(agent, args.passage_id)
    memory.forget(agent, args.passage_id)
    print(f"Forgot {args.passage_id}: {preview(gone['text'], 80)}")
    return 0
