"""The `mnemo` command. Each command is thin over the library."""

from __future__ import annotations

import sys

from mnemo import __version__
from mnemo.errors import MnemoError

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse


def serve(args: argparse.Namespace) -> int:
    import logging
    import signal

    import uvicorn

    from mnemo.api import create_app
    from mnemo.api.connections import RESERVED_FDS, guarded_protocol, raise_fd_limit
    from mnemo.api.observe import configure_logging
    from mnemo.config import Settings
    from mnemo.heap import keep_freed_memory

    settings = Settings.load(
        host=args.host, port=args.port, data_dir=args.data_dir, database_url=args.database_url
    )
    configure_logging(settings.log_level, settings.log_format)
    log = logging.getLogger("mnemo")
    if not keep_freed_memory():
        log.debug("malloc tuning unavailable here (no glibc)")
    log.info("data directory: %s", settings.data_dir)
    if settings.host in ("127.0.0.1", "localhost", "::1"):
        from mnemo.claude.launcher import record_server
        from mnemo.remote.config import state_dir

        record_server(state_dir(), settings.port, str(settings.data_dir), settings.database_url)
    app = create_app(settings)
    auth = "on (bearer key)" if settings.api_key else "off"
    log.info(
        "mnemo %s ready on http://%s:%d (auth %s)", __version__, settings.host, settings.port, auth
    )
    # uvicorn shuts down gracefully on SIGTERM, then re-raises it; a no-op handler turns that
    # into a normal exit with status 0, which is what service managers expect.
    signal.signal(signal.SIGTERM, lambda _signum, _frame: None)
    connections = min(settings.max_connections, raise_fd_limit() - RESERVED_FDS)
    uvicorn.run(
        app,
        http=guarded_protocol(settings.first_request_timeout, connections),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        log_config=None,  # our handlers (configure_logging) format uvicorn's records too
        access_log=False,  # ObserveMiddleware logs each request with its request id
        timeout_graceful_shutdown=10,
    )
    return 0


def migrate_command(args: argparse.Namespace) -> int:
    from mnemo.config import Settings
    from mnemo.store import open_store

    settings = Settings.load(
        data_dir=args.data_dir, database_url=args.database_url, migrate_on_start=False
    )
    store = open_store(settings)
    applied = store.migrate()
    if args.repair:
        applied += store.repair_indexes()
    store.close()
    print("applied: " + ", ".join(applied) if applied else "database is up to date")
    return reindex_command(args, only_if_outdated=True)


def reindex_command(args: argparse.Namespace, only_if_outdated: bool = False) -> int:
    from mnemo.config import Settings
    from mnemo.embed import EmbedderRegistry
    from mnemo.service import MemoryService
    from mnemo.store import open_store

    settings = Settings.load(data_dir=args.data_dir, database_url=args.database_url)
    service = MemoryService(
        open_store(settings, must_exist=True), EmbedderRegistry(settings), settings
    )
    try:
        if getattr(args, "embeddings", False):
            target = args.model or service.embedders.default_handle

            def embedded(done: int) -> None:
                print(f"\rre-embedded {done:,} passages with {target}", end="", file=sys.stderr)

            done = service.reembed(args.agent or None, target, embedded)
            print(f"\rre-embedded {done:,} passages with {target}", file=sys.stderr)
            return 0
        if only_if_outdated and service.keywords_current():
            return 0
        counts = service.store.counts()
        total = counts["passages"] + counts["messages"]

        def progress(done: int) -> None:
            done_of = f"{done:,}/{total:,}"
            print(f"\rkeyword index: {done_of} passages and messages", end="", file=sys.stderr)

        done = service.reindex_keywords(progress)
        print(f"\rkeyword index: {done:,} passages and messages re-analysed", file=sys.stderr)
    finally:
        service.store.close()
    return 0


def migrate_data_command(args: argparse.Namespace) -> int:
    from mnemo.config import Settings
    from mnemo.store import open_store
    from mnemo.text import ANALYZER_VERSION
    from mnemo.transfer import copy_store

    source = open_store(Settings.load(database_url=args.source), must_exist=True)
    target = open_store(Settings.load(database_url=args.target))
    try:
        result = copy_store(source, target)
        if source.analyzer_version() == ANALYZER_VERSION:
            # The copies carry their context and were indexed by this analyzer on the way in.
            target.reindex_keywords([], ANALYZER_VERSION)
    finally:
        source.close()
        target.close()
    print(f"{'':9s} {'source':>10s} {'target':>10s} {'copied':>10s}")
    ok = True
    for kind in ("agents", "blocks", "passages", "messages"):
        src, dst = result["source"][kind], result["target"][kind]
        ok = ok and dst >= src
        print(f"{kind:9s} {src:>10,} {dst:>10,} {result['copied'][kind]:>10,}")
    print("verified: every row is in the target" if ok else "MISMATCH: run again to resume")
    return 0 if ok else 1


def mcp_command(args: argparse.Namespace) -> int:
    from mnemo.mcp.server import run_stdio

    run_stdio()
    return 0


def hook(args: argparse.Namespace) -> int:
    from mnemo.claude.hooks import run

    return run(args.event)


def install_command(args: argparse.Namespace) -> int:
    import shutil

    from mnemo.claude import install

    path = install.settings_path(args.project, args.user)
    # Project settings are committed for the team: no path of this machine goes in them.
    command = install.mnemo_command(portable=not args.user)
    for line in install.install(
        path,
        command,
        deny_rules=not args.no_deny_rules,
        formatter=args.format,
        statusline=args.statusline,
    ):
        print(line)
    if not args.user:
        for line in install.install_mcp(path.parent.parent, command):
            print(line)
        if not shutil.which(command):
            print(
                f"note: `{command}` is not on this shell's PATH; Claude Code runs the hooks with "
                f"it, so put {install.mnemo_command()} on PATH (e.g. `pipx install .`) or use "
                "`mnemo install --user` for settings of this machine only"
            )
    else:
        print(f"MCP tools: claude mcp add --scope user mnemo -- {install.mnemo_command()} mcp")
    install.compile_bytecode()
    print(f"mnemo is wired into {path}")
    return 0


def uninstall_command(args: argparse.Namespace) -> int:
    from mnemo.claude import install

    path = install.settings_path(args.project, args.user)
    for line in install.uninstall(path):
        print(line)
    if not args.user:
        for line in install.uninstall_mcp(path.parent.parent):
            print(line)
    return 0


def statusline_command(_args: argparse.Namespace) -> int:
    from mnemo.claude import statusline

    return statusline.run()


def doctor_command(args: argparse.Namespace) -> int:
    from pathlib import Path

    from mnemo.claude import install

    ok, lines = install.doctor(args.project or Path.cwd())
    print("\n".join(lines))
    return 0 if ok else 1


def status_command(args: argparse.Namespace) -> int:
    from pathlib import Path

    from mnemo.claude import install

    print("\n".join(install.status(args.project or Path.cwd())))
    return 0


def ui_command(args: argparse.Namespace) -> int:
    """Open the memory viewer: this project's page when it has memory, else every project."""
    import os
    import webbrowser

    from mnemo.remote import project
    from mnemo.remote.client import Client
    from mnemo.remote.config import ClientConfig, state_dir

    config = ClientConfig.load()
    client = Client(config.url, config.api_key, 5.0, connect_timeout=1.0)
    if not client.health():
        print(
            f"mnemo: no server answers at {config.url}; start it with `mnemo serve`",
            file=sys.stderr,
        )
        return 2
    root = project.project_root(str(args.project or os.getcwd()))
    agent = config.agent_id or project.cached_agent(state_dir(), root)
    url = f"{config.url}/ui/" + (f"agents/{agent}" if agent else "")
    print(url)
    if not args.print_only and not webbrowser.open(url):
        print("mnemo: no browser to open here; the address is above", file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    import argparse
    from pathlib import Path

    parser = argparse.ArgumentParser(
        prog="mnemo", description="Persistent memory for Claude Code and other agents."
    )
    parser.add_argument("--version", action="version", version=f"mnemo {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = commands.add_parser(
        "serve",
        help="run the memory server (Letta-compatible REST API)",
        description="Run the memory server. Settings come from the config file, MNEMO_* "
        "environment variables, then these flags. MNEMO_API_KEY turns on bearer auth.",
    )
    p.add_argument("--host", help="interface to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default 8283)")
    p.add_argument("--data-dir", type=Path, help="where the SQLite database lives (MNEMO_DATA_DIR)")
    p.add_argument(
        "--database-url", help="postgresql://… for the team backend (MNEMO_DATABASE_URL)"
    )
    p.set_defaults(handler=serve)

    p = commands.add_parser(
        "reindex",
        help="re-analyse passages for keyword search, or re-embed them with another model",
        description="Rewrite every passage's keyword postings with this version's analyzer "
        "(mnemo/text.py). Servers do it at start when the analyzer changed; 'mnemo migrate' "
        "does it for PostgreSQL deployments whose replicas do not migrate. With --embeddings: "
        "move agents to the default embedding model (or --model) and re-embed their passages "
        "made with another one; resumable, and vector search of an agent refuses to run "
        "(409) until its passages are on one model.",
    )
    p.add_argument("--data-dir", type=Path)
    p.add_argument("--database-url")
    p.add_argument("--embeddings", action="store_true", help="re-embed instead of re-analyse")
    p.add_argument("--model", help="embedding handle to move to (default: default_embedding)")
    p.add_argument(
        "--agent", action="append", help="only this agent (repeatable; default: every agent)"
    )
    p.set_defaults(handler=reindex_command)

    p = commands.add_parser(
        "migrate",
        help="apply pending schema migrations and exit",
        description="Apply the schema migrations this database has not seen (under an advisory "
        "lock on PostgreSQL, so concurrent runs are safe).",
    )
    p.add_argument("--data-dir", type=Path)
    p.add_argument("--database-url")
    p.add_argument(
        "--repair",
        action="store_true",
        help="also build the search indexes an interrupted bulk load (migrate-data, import) "
        "left missing, while servers keep running; minutes per million passages",
    )
    p.set_defaults(handler=migrate_command)

    p = commands.add_parser(
        "migrate-data",
        help="copy all memory between backends (SQLite <-> PostgreSQL), resumable",
        description="Copy every agent, block, link, passage (with its embedding) and message "
        "from one store to another, keeping ids. Rows already in the target are skipped, so an "
        "interrupted copy is resumed by running it again. Counts are verified at the end.",
    )
    p.add_argument(
        "--from",
        dest="source",
        required=True,
        metavar="URL",
        help="sqlite:///path/mnemo.sqlite3 or postgresql://…",
    )
    p.add_argument("--to", dest="target", required=True, metavar="URL")
    p.set_defaults(handler=migrate_data_command)

    p = commands.add_parser(
        "mcp",
        help="run the MCP server over stdio (memory tools for Claude Code and MCP clients)",
        description="Serve mnemo's memory tools over stdio. The memory server must be running "
        "(MNEMO_URL, default http://127.0.0.1:8283); the project is the working directory "
        "or CLAUDE_PROJECT_DIR. Streamable HTTP is served by `mnemo serve` at /mcp.",
    )
    p.set_defaults(handler=mcp_command)

    p = commands.add_parser(
        "hook",
        help="run a Claude Code hook (reads the event JSON on stdin)",
        description="Claude Code runs these; they always exit 0 and never block a session.",
    )
    p.add_argument(
        "event",
        choices=[
            "session-start",
            "user-prompt-submit",
            "pre-tool-use",
            "post-tool-use",
            "pre-compact",
            "stop",
            "session-end",
            "finish-session",
            "replay",
            "format",
        ],
    )
    p.set_defaults(handler=hook)

    for name, handler, text in (
        ("install", install_command, "add mnemo's hooks to Claude Code settings (idempotent)"),
        ("uninstall", uninstall_command, "remove exactly what `mnemo install` added"),
    ):
        p = commands.add_parser(name, help=text, description=text)
        where = p.add_mutually_exclusive_group()
        where.add_argument(
            "--project", type=Path, metavar="DIR", help="project settings (default: here)"
        )
        where.add_argument(
            "--user", action="store_true", help="user settings (~/.claude/settings.json)"
        )
        if name == "install":
            p.add_argument(
                "--no-deny-rules", action="store_true", help="skip permissions.deny rules"
            )
            p.add_argument(
                "--statusline",
                action="store_true",
                help="also show this project's memory in Claude Code's status line "
                "(unless the settings have a status line already)",
            )
            p.add_argument(
                "--format",
                action="store_true",
                help="also format each Python file Claude edits with the project's formatter "
                "(ruff format, else black), when the project configures one",
            )
        p.set_defaults(handler=handler)

    p = commands.add_parser(
        "statusline", help="print the Claude Code status line (reads its JSON on stdin)"
    )
    p.set_defaults(handler=statusline_command)
    p = commands.add_parser("doctor", help="check server, hooks and hook latency; say what to fix")
    p.add_argument("--project", type=Path, metavar="DIR")
    p.set_defaults(handler=doctor_command)
    p = commands.add_parser("status", help="this project's memory: agent, blocks, last sessions")
    p.add_argument("--project", type=Path, metavar="DIR")
    p.set_defaults(handler=status_command)
    p = commands.add_parser(
        "ui",
        help="open the memory viewer in the browser (this project's page when it has memory)",
    )
    p.add_argument("--project", type=Path, metavar="DIR")
    p.add_argument(
        "--print", dest="print_only", action="store_true", help="print the address, open nothing"
    )
    p.set_defaults(handler=ui_command)

    from mnemo.commands import backup, pipeline, projects, remember, search, team

    for module in (projects, team, pipeline, remember, search, backup):
        module.register(commands)
    return parser


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) == 2 and argv[0] == "hook" and not argv[1].startswith("-"):
        # Claude Code starts a hook on every prompt and tool call: skip argparse (~7 ms).
        from mnemo.claude.hooks import HANDLERS, run

        if argv[1] in HANDLERS:
            sys.exit(run(argv[1]))
    if argv == ["statusline"]:  # after every assistant message: same fast path as the hooks
        from mnemo.claude import statusline

        sys.exit(statusline.run())
    parser = build_parser()
    args = parser.parse_args(argv)
    from mnemo.remote.errors import ConfigError

    if not getattr(args, "handler", None):
        parser.print_help()
        sys.exit(2)
    try:
        sys.exit(args.handler(args))
    except MnemoError as exc:
        print(f"mnemo: {exc.message}", file=sys.stderr)
        sys.exit(2)
    except ConfigError as exc:
        print(f"mnemo: {exc}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)
