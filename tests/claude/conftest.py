"""Hook programs run as subprocesses, as Claude Code runs them, in a temporary HOME."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mnemo.remote.spool import Spool


def git_project(path: Path, readme: str = "# Demo uploader\nUploads files with retries.\n") -> Path:
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["git", "init", "-q", str(path)], check=True)
    (path / "README.md").write_text(readme)
    (path / "pyproject.toml").write_text('[project]\nname = "demo"\n')
    return path


def settle(state: Path, delivered: bool = True, timeout: float = 30.0) -> None:
    """Wait for the background writers hooks started (hooks.WORKER_PID, the spool's replay
    lock) to finish, and with `delivered` for every spooled write to be on the server: a
    writer deletes each one once the server has stored it."""
    deadline = time.monotonic() + timeout
    spool = state / "spool"
    try:
        pid = int((state / "worker.pid").read_text())
    except FileNotFoundError:
        pid = 0
    while (
        (pid and _running(pid))
        or Spool(str(spool)).replaying()
        or (delivered and list(spool.glob("*.json")))
    ):
        assert time.monotonic() < deadline, f"writes still spooled: {list(spool.glob('*.json'))}"
        time.sleep(0.05)


def _running(pid: int) -> bool:
    """Whether `pid` runs (a zombie nobody reaped has finished)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, IndexError):
        return False
    return fields[0] != "Z"


@dataclass
class HookRunner:
    home: Path
    url: str

    @property
    def env(self) -> dict[str, str]:
        (self.home / "no-config.toml").touch()  # empty unless a test writes settings into it
        env = {
            k: v for k, v in os.environ.items() if not k.startswith(("MNEMO_", "XDG_", "CLAUDE"))
        }
        env.update(
            HOME=str(self.home),
            MNEMO_URL=self.url,
            MNEMO_CONFIG=str(self.home / "no-config.toml"),
            MNEMO_AUTOSTART="0",
        )
        return env

    @property
    def state(self) -> Path:
        return self.home / ".local" / "state" / "mnemo"

    def run(
        self, name: str, payload: dict[str, Any], **env: str
    ) -> tuple[subprocess.CompletedProcess[str], dict[str, Any] | None]:
        result = subprocess.run(
            [sys.executable, "-m", "mnemo", "hook", name],
            input=json.dumps(payload),
            capture_output=True,
            text=True,
            env={**self.env, **env},
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        reply = json.loads(result.stdout) if result.stdout.strip() else None
        return result, reply

    def settle(self, delivered: bool = True) -> None:
        settle(self.state, delivered)

    def cli(
        self, *args: str, cwd: Path | None = None, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """`mnemo ARGS` as a user runs it: in `cwd`, no terminal on stdin."""
        return subprocess.run(
            [sys.executable, "-m", "mnemo", *args],
            capture_output=True,
            text=True,
            cwd=cwd,
            env={**self.env, **(env or {})},
            stdin=subprocess.DEVNULL,
            timeout=120,
        )


@pytest.fixture
def hooks(server, tmp_path: Path) -> HookRunner:  # type: ignore[no-untyped-def]
    home = tmp_path / "home"
    home.mkdir()
    return HookRunner(home=home, url=server.url)
