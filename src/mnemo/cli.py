"""The `mnemo` command. Each command is thin over the library."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from pathlib import Path

from mnemo import __version__
from mnemo.errors import MnemoError


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    from mnemo.api import create_app
    from mnemo.config import Settings

    settings = Settings.load(host=args.host, port=args.port, data_dir=args.data_dir)
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    log = logging.getLogger("mnemo")
    log.info("data directory: %s", settings.data_dir)
    app = create_app(settings)
    auth = "on (bearer key)" if settings.api_key else "off"
    log.info(
        "mnemo %s ready on http://%s:%d (auth %s)", __version__, settings.host, settings.port, auth
    )
    # uvicorn shuts down gracefully on SIGTERM, then re-raises it; a no-op handler turns that
    # into a normal exit with status 0, which is what service managers expect.
    signal.signal(signal.SIGTERM, lambda _signum, _frame: None)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        timeout_graceful_shutdown=10,
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
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
    p.set_defaults(handler=serve)
    return parser


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        sys.exit(2)
    try:
        sys.exit(args.handler(args))
    except MnemoError as exc:
        print(f"mnemo: {exc.message}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)
