"""Starting detached helper processes from hooks: the server and background workers.

A hook must return at once, so anything slow runs in a new session (it survives the hook and
Claude Code), with its output in a log file under the state directory.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from urllib.parse import urlsplit

LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


def detached(args: list[str], log: str, stdin_data: bytes | None = None) -> int:
    os.makedirs(os.path.dirname(log), exist_ok=True)
    with open(log, "ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "mnemo", *args],
            stdin=subprocess.PIPE if stdin_data is not None else subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            start_new_session=True,
            close_fds=True,
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


def start_server(url: str, state: str) -> bool:
    """Start `mnemo serve` for a local URL unless one is already starting or running.
    Returns True when this call launched it."""
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
        args = ["serve", "--host", parts.hostname or "127.0.0.1", "--port", str(parts.port or 8283)]
        pid = detached(args, os.path.join(state, "server.log"))
        with open(pid_file, "w") as file:
            file.write(str(pid))
        return True
