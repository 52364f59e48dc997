"""Starting detached helper processes from hooks: the server and background workers.

A hook must return at once, so anything slow runs in a new session (it survives the hook and
Claude Code), with its output in a log file under the state directory.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys

LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
SERVER_RECORD = "server-{port}.json"  # in the state dir: what the server on a port serves


def detached(
    args: list[str], log: str, stdin_data: bytes | None = None, env: dict[str, str] | None = None
) -> int:
    os.makedirs(os.path.dirname(log), exist_ok=True)
    with open(log, "ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "mnemo", *args],
            stdin=subprocess.PIPE if stdin_data is not None else subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            start_new_session=True,
            close_fds=True,
            env={**os.environ, **env} if env else None,
        )
    if stdin_data is not None and process.stdin is not None:
        process.stdin.write(stdin_data)
        process.stdin.close()
    return process.pid


def _alive(pid_file: str) -> bool:
    try:
        with open(pid_file) as file:
            pid = int(file.read().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return False
    return True


def record_server(state: str, port: int, data_dir: str, database_url: str) -> None:
    """Remember what the local server on `port` serves, so a server a hook starts later serves
    the same memory (readable by this user only: a database URL may hold a password)."""
    os.makedirs(state, exist_ok=True)
    path = os.path.join(state, SERVER_RECORD.format(port=port))
    temporary = f"{path}.tmp"
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        json.dump({"data_dir": data_dir, "database_url": database_url}, file)
    os.replace(temporary, path)


def recorded_server(state: str, port: int) -> dict[str, str]:
    """What the server last started on `port` served ({} if none was recorded)."""
    try:
        with open(os.path.join(state, SERVER_RECORD.format(port=port))) as file:
            record = json.load(file)
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def start_server(url: str, state: str) -> bool:
    """Start `mnemo serve` for a local URL unless one is already starting or running, on the
    data the server last started on that port served. Returns True when this call launched it."""
    from urllib.parse import urlsplit  # not on the per-call hooks' path, which start workers

    parts = urlsplit(url)
    if parts.hostname not in LOCAL_HOSTS:
        return False
    os.makedirs(state, exist_ok=True)
    pid_file = os.path.join(state, "server.pid")
    with open(os.path.join(state, "server.lock"), "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False  # another hook is starting it right now
        if _alive(pid_file):
            return False
        port = parts.port or 8283
        args = ["serve", "--host", parts.hostname or "127.0.0.1", "--port", str(port)]
        record = recorded_server(state, port)
        env = {}
        if record.get("data_dir"):
            args += ["--data-dir", str(record["data_dir"])]
        if record.get("database_url"):
            env["MNEMO_DATABASE_URL"] = str(record["database_url"])  # not on the command line
        pid = detached(args, os.path.join(state, "server.log"), env=env)
        with open(pid_file, "w") as file:
            file.write(str(pid))
        return True
