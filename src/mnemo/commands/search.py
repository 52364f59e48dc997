"""`mnemo search` and `mnemo prune`: find memories by meaning and filters; keep memory tidy."""

from __future__ import annotations

import argparse
import json
from typing import Any

from mnemo.commands import agent_id, client, friendly, preview, target_options, when


def register(commands: Any) -> None:
    p = commands.add_parser(
        "search",
        help="search a project's memories, filtered on the server",
        description="With a QUERY: hybrid search among the memories that pass every filter. "
        "Without one: the newest memories that pass them. Filters run on the server before "
        "ranking, so matches are found however many other memories there are.",
    )
    p.add_argument("query", nargs="?", help="what to look for (omit to list newest first)")
    p.add_argument("--type", help="e.g. file_change, test_failure, deployment, decision")
    p.add_argument("--since", help="7d, 12h, 2w or an ISO date")
    p.add_argument("--until", help="ISO date or datetime")
    p.add_argument("--file", metavar="PATH", help="history of one file (edits and failures)")
    p.add_argument("--env", help="deployments to this environment")
    p.add_argument("--tag", action="append", help="any of these tags (repeatable)")
    p.add_argument("--meta", action="append", metavar="KEY=VALUE", help="metadata match")
    p.add_argument(
        "--similar-bug",
        action="store_true",
        help="QUERY is an error: search failures, incidents and fixes",
    )
    p.add_argument("--decisions", action="store_true", help="the ADR log and decision records")
    p.add_argument(
        "--conversations",
        action="store_true",
        help="QUERY searches what was said in past sessions (recall messages), not the memories;"
        " with --since, --until and --session",
    )
    p.add_argument("--session", metavar="ID", help="with --conversations: one session only")
    p.add_argument("--limit", type=int, default=10)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    target_options(p)
    p.set_defaults(handler=search_command)

    p = commands.add_parser(
        "prune",
        help="apply a retention policy (age, count per type) to a project's memories",
        description="Deletes the memories of a type that are older than --older-than or beyond "
        "the newest --keep. Without --type, the [retention] table of the config file gives a "
        'policy per type, e.g. file_change = {older_than = "90d", keep = 2000}.',
    )
    p.add_argument("--type", help="memories of this type (metadata.type)")
    p.add_argument("--older-than", metavar="AGE", help="e.g. 90d, 12w")
    p.add_argument("--keep", type=int, metavar="N", help="keep the newest N")
    p.add_argument("--dry-run", action="store_true", help="list what would go; delete nothing")
    target_options(p)
    p.set_defaults(handler=prune_command)


def _metadata(pairs: list[str] | None) -> dict[str, str]:
    metadata = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--meta wants KEY=VALUE, got {pair!r}")
        metadata[key] = value
    return metadata


def _print(rows: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    for row in rows:
        meta = row.get("metadata") or {}
        kind = meta.get("type") or ",".join(row.get("tags") or []) or "memory"
        stamp = when(row.get("created_at") or row.get("timestamp"))
        score = f"{row['score']:.3f} " if "score" in row else ""
        print(f"{stamp}  {score}{kind:16} {preview(row.get('text') or row.get('content', ''))}")
    if not rows:
        print("nothing found")


@friendly
def search_command(args: argparse.Namespace) -> int:
    if args.session and not args.conversations:
        raise ValueError("--session picks a session's messages: use it with --conversations")
    memory = client(args)
    agent = agent_id(args, memory)
    if args.conversations:
        return _conversations(args, memory, agent)
    metadata = _metadata(args.meta)
    if args.env:
        metadata["environment"] = args.env
        args.type = args.type or "deployment"
    if args.decisions:
        found = memory.decisions(agent, args.query, limit=args.limit)
        if args.json:
            print(json.dumps(found, indent=2))
            return 0
        if found["adr_log"]:
            print(found["adr_log"].rstrip() + "\n")
        _print(found["decisions"], False)
        return 0
    if args.file:
        rows = memory.file_history(agent, args.file, limit=args.limit)
    elif args.similar_bug:
        if not args.query:
            raise ValueError("--similar-bug needs the error text as QUERY")
        rows = memory.similar_bugs(agent, args.query, top_k=args.limit)
    elif args.query:
        rows = memory.search(
            agent,
            args.query,
            top_k=args.limit,
            type=args.type,
            tags=args.tag,
            since=args.since,
            until=args.until,
            metadata=metadata,
        )
    else:
        rows = list(
            memory.passages(
                agent,
                type=args.type,
                tags=args.tag,
                since=args.since,
                until=args.until,
                metadata=metadata,
                limit=args.limit,
            )
        )
    _print(rows, args.json)
    return 0


MEMORY_FILTERS = ("type", "file", "env", "tag", "meta", "similar_bug", "decisions")


def _conversations(args: argparse.Namespace, memory: Any, agent: str) -> int:
    """What was said in past sessions, best match first."""
    if not args.query:
        raise ValueError("--conversations needs a QUERY: the words to look for")
    given = [f"--{name.replace('_', '-')}" for name in MEMORY_FILTERS if getattr(args, name)]
    if given:
        raise ValueError(
            f"{', '.join(given)} filter memories; --conversations searches messages"
            " (filter them with --since, --until, --session)"
        )
    rows = memory.search_messages(
        agent, args.query, args.limit, args.session, args.since, args.until
    )
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for row in rows:
        who = str(row.get("message_type", "")).removesuffix("_message")
        session = str(row.get("conversation_id") or "-")[:8]
        print(
            f"{when(row.get('date'))}  {row['score']:.3f} {who:9} {session}  "
            f"{preview(row.get('content', ''))}"
        )
    if not rows:
        print("nothing said matches")
    return 0


def _policies(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    if args.type:
        return {args.type: {"older_than": args.older_than, "keep": args.keep}}
    if args.older_than or args.keep is not None:
        raise ValueError("--older-than/--keep need --type (or a [retention] table in config)")
    from mnemo import config_file

    policies: dict[str, Any] = config_file.load().get("retention", {})
    if not policies:
        raise ValueError(
            "no policy: give --type with --older-than/--keep, or a [retention] table in "
            + config_file.path()
        )
    return policies


@friendly
def prune_command(args: argparse.Namespace) -> int:
    from mnemo.remote.client import since_datetime

    policies = _policies(args)
    memory = client(args)
    agent = agent_id(args, memory)
    total = 0
    for kind, policy in policies.items():
        days = None
        if policy.get("older_than"):
            cutoff = since_datetime(str(policy["older_than"]))
            assert cutoff is not None
            from datetime import UTC, datetime

            days = (datetime.now(UTC) - cutoff).total_seconds() / 86400
        keep = policy.get("keep")
        if days is None and keep is None:
            raise ValueError(f"policy for {kind}: give older_than and/or keep")
        result = memory.prune(
            agent, type=kind, older_than_days=days, keep_latest=keep, dry_run=args.dry_run
        )
        total += result["matched"]
        verb = "would delete" if args.dry_run else "deleted"
        print(f"{kind}: {verb} {result['matched']}")
        for row in result["passages"][:20]:
            print(f"  {when(row['created_at'])}  {preview(row['text'], 80)}")
        if result["matched"] > 20:
            print(f"  … and {result['matched'] - 20} more")
    print(f"{'would delete' if args.dry_run else 'deleted'} {total} memories in all")
    return 0
