"""`mnemo export` and `mnemo import`: complete, streaming, verifiable logical backups."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from mnemo.commands import client, friendly


def register(commands: Any) -> None:
    p = commands.add_parser(
        "export",
        help="back up all memory to one file (or one agent as an Agent File)",
        description="--all writes every agent, block, link, passage (with its embedding) and "
        "message of the store as gzip-compressed JSON Lines, streamed in constant memory and "
        "sealed with counts and a SHA-256. It reads the database directly (--database-url or "
        "--data-dir, default: the configured store), so it also works while no server runs. "
        "--agent exports one agent in Letta's Agent File format through the server.",
    )
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--all", action="store_true", help="the whole store")
    what.add_argument("--agent", metavar="ID", help="one agent, as an Agent File (.af JSON)")
    p.add_argument(
        "-o", "--output", default="-", metavar="FILE", help="where to write (default: stdout)"
    )
    store_options(p)
    p.add_argument("--server", metavar="URL", help="with --agent: the server (default MNEMO_URL)")
    p.set_defaults(handler=export_command)

    p = commands.add_parser(
        "import",
        help="restore a backup made by `mnemo export --all`",
        description="Verifies the whole file first (format, every line, counts, SHA-256): a "
        "damaged or truncated backup restores nothing. Then loads it, keeping ids; rows already "
        "present are skipped, so an interrupted import is resumed by running it again. Ends by "
        "comparing counts.",
    )
    p.add_argument("file", metavar="FILE")
    p.add_argument("--verify-only", action="store_true", help="check the file; change nothing")
    store_options(p)
    p.set_defaults(handler=import_command)


def store_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--database-url", help="postgresql://… (default: MNEMO_DATABASE_URL)")
    parser.add_argument("--data-dir", help="the SQLite data directory (default: MNEMO_DATA_DIR)")


def _store(args: argparse.Namespace, must_exist: bool = False) -> Any:
    from pathlib import Path

    from mnemo.config import Settings
    from mnemo.store import open_store

    settings = Settings.load(
        database_url=args.database_url,
        data_dir=Path(args.data_dir) if args.data_dir else None,
        migrate_on_start=True,
    )
    return open_store(settings, must_exist=must_exist)


@friendly
def export_command(args: argparse.Namespace) -> int:
    if args.agent:
        import json

        document = client(args).export_agent(args.agent)
        text = json.dumps(document, indent=2)
        if args.output == "-":
            print(text)
        else:
            with open(args.output, "w", encoding="utf-8") as file:
                file.write(text)
        return 0
    from mnemo.backup import export_store

    if args.output == "-" and sys.stdout.isatty():
        raise ValueError("refusing to write a compressed backup to a terminal; use --output FILE")
    store = _store(args, must_exist=True)
    try:
        if args.output == "-":
            counts = export_store(store, sys.stdout.buffer)
        else:
            temporary = f"{args.output}.partial"
            with open(temporary, "wb") as out:
                counts = export_store(store, out)
            import os

            os.replace(temporary, args.output)  # a half-written backup never has the final name
    finally:
        store.close()
    summary = ", ".join(f"{n:,} {kind}" for kind, n in counts.items())
    print(f"exported {summary}", file=sys.stderr)
    return 0


@friendly
def import_command(args: argparse.Namespace) -> int:
    from mnemo.backup import BackupError, import_store, verify

    if args.file == "-":
        raise ValueError("import reads a file (verified whole before loading), not stdin")
    try:
        header = verify(args.file)  # before the store is even opened
        if args.verify_only:
            summary = ", ".join(f"{n:,} {kind}" for kind, n in header["counts"].items())
            print(f"ok: a complete mnemo backup from {header['created_at']}: {summary}")
            return 0
        store = _store(args)
        try:
            result = import_store(args.file, store, header)
        finally:
            store.close()
    except BackupError as exc:
        print(f"mnemo: {exc}", file=sys.stderr)
        return 2
    print(f"{'':9s} {'backup':>10s} {'added':>10s} {'now':>10s}")
    complete = True
    for kind in ("agents", "blocks", "passages", "messages"):
        backup, now = result["backup"][kind], result["target"][kind]
        complete = complete and now >= backup
        print(f"{kind:9s} {backup:>10,} {result['added'][kind]:>10,} {now:>10,}")
    print(
        "verified: every row of the backup is in the store"
        if complete
        else "MISMATCH: the store has fewer rows than the backup; run the import again"
    )
    return 0 if complete else 1
