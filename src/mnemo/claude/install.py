"""`mnemo install / uninstall / doctor / status`: wiring mnemo into Claude Code settings.

The installer merges into `.claude/settings.json` (project) or `~/.claude/settings.json` (user),
keeps everything already there, writes a backup first, and records what it added so that
`uninstall` removes exactly that.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from mnemo import config_file
from mnemo.claude import guard
from mnemo.claude.state import FIX_PENDING_DIR
from mnemo.remote import project
from mnemo.remote.client import Client
from mnemo.remote.config import ClientConfig, state_dir
from mnemo.remote.errors import ApiError, Unreachable
from mnemo.remote.spool import Spool

# (Claude Code event, matcher or None, our hook name, timeout seconds). A name ending in
# FIX_PENDING runs only while a failed command waits for its fix (state.mark_fix_pending).
FIX_PENDING = "--when-fix-pending"
HOOKS: list[tuple[str, str | None, str, int]] = [
    ("SessionStart", "startup|resume|clear|compact", "session-start", 10),
    ("UserPromptSubmit", None, "user-prompt-submit", 5),
    ("PreToolUse", "Bash", "pre-tool-use", 5),
    ("PostToolUse", "Edit|Write|MultiEdit|NotebookEdit", "post-tool-use", 5),
    # A command that succeeded matters only as the fix of an earlier failure: without one
    # pending, the shell answers and no Python process starts on every Bash call.
    ("PostToolUse", "Bash", f"post-tool-use {FIX_PENDING}", 5),
    ("PostToolUseFailure", "Bash", "post-tool-use", 5),
    ("PreCompact", None, "pre-compact", 10),
    ("SessionEnd", None, "session-end", 5),
]
# Hooks an earlier mnemo installed and this one retires on reinstall. `stop` imported a turn's
# messages for recall after every answer: the session-end worker and pre-compact import them,
# and a session without it is faster by a Python process per answer (docs/benchmarks.md).
RETIRED_HOOKS = ("stop",)
# Opt-in (`mnemo install --format`): format an edited Python file with the project's formatter.
FORMAT_HOOK = ("PostToolUse", "Write|Edit|MultiEdit", "format", 15)


PORTABLE_COMMAND = "mnemo"
# The state directory as remote/config.py's state_dir() finds it, in POSIX shell.
STATE_DIR_SH = "${MNEMO_STATE_DIR:-${XDG_STATE_HOME:-$HOME/.local/state}/mnemo}"


def hook_line(command: str, name: str) -> str:
    """The settings command for hook `name` (see HOOKS)."""
    name, _, gate = name.partition(" ")
    line = f"{command} hook {name}"
    if gate == FIX_PENDING:
        marker = f"{STATE_DIR_SH}/{FIX_PENDING_DIR}"
        return f'[ -d "{marker}" ] || {{ cat >/dev/null; exit 0; }}; {line}'
    return line


def mnemo_command(portable: bool = False) -> str:
    """How Claude Code should start mnemo: the executable next to this interpreter, or, for
    settings a team commits (`portable`), the `mnemo` on each machine's PATH."""
    if portable:
        return PORTABLE_COMMAND
    beside = Path(sys.executable).with_name("mnemo")
    if beside.is_file():
        return shlex.quote(str(beside))
    found = shutil.which("mnemo")
    if found:
        return shlex.quote(found)
    return f"{shlex.quote(sys.executable)} -m mnemo"


def settings_path(project_dir: Path | None, user: bool) -> Path:
    if user:
        return Path(os.path.expanduser("~")) / ".claude" / "settings.json"
    root = Path(project.project_root(str(project_dir or Path.cwd())))
    return root / ".claude" / "settings.json"


def _read(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    text = path.read_text()
    if not text.strip():
        return {}
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise SystemExit(f"mnemo install: {path} is not valid JSON ({exc}); fix it first") from exc
    if not isinstance(data, dict):
        raise SystemExit(f"mnemo install: {path} does not hold a JSON object")
    return data


def _write(path: Path, data: dict[str, Any]) -> Path | None:
    path.parent.mkdir(parents=True, exist_ok=True)
    backup = None
    if path.exists():
        backup = path.with_name(f"{path.name}.mnemo-backup-{time.strftime('%Y%m%d-%H%M%S')}")
        shutil.copy2(path, backup)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(temporary, path)
    return backup


def _records_path() -> Path:
    return Path(state_dir()) / "installs.json"


def _records() -> dict[str, Any]:
    try:
        return json.loads(_records_path().read_text())
    except (OSError, ValueError):
        return {}


def _save_records(records: dict[str, Any]) -> None:
    path = _records_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(records, indent=2))


def install_mcp(project_root: Path, command: str | None = None) -> list[str]:
    """Register `mnemo mcp` in the project's `.mcp.json` (kept: every other server)."""
    command = command or mnemo_command()
    path = project_root / ".mcp.json"
    data = _read(path)
    servers = data.setdefault("mcpServers", {})
    executable, *prefix = shlex.split(command)
    entry = {"command": executable, "args": [*prefix, "mcp"]}
    if servers.get("mnemo") == entry:
        return []
    if "mnemo" in servers:
        return [f"{path} already has a different 'mnemo' server; left unchanged"]
    servers["mnemo"] = entry
    backup = _write(path, data)
    records = _records()
    records.setdefault(str(path), {"commands": [], "deny": [], "mcp": []})["mcp"] = ["mnemo"]
    _save_records(records)
    return [f"MCP server 'mnemo' in {path}" + (f" (backup: {backup})" if backup else "")]


def uninstall_mcp(project_root: Path) -> list[str]:
    path = project_root / ".mcp.json"
    records = _records()
    entry = records.pop(str(path), None)
    if not entry or not path.is_file():
        return []
    data = _read(path)
    for name in entry.get("mcp", []):
        data.get("mcpServers", {}).pop(name, None)
    if data.get("mcpServers") == {}:
        del data["mcpServers"]
    if data:
        _write(path, data)
    else:
        path.unlink()
    _save_records(records)
    return [f"removed the 'mnemo' MCP server from {path}"]


def compile_bytecode() -> bool:
    """Write mnemo's .pyc files: every hook process then skips compiling its sources (~15 ms per
    prompt). Editable installs and PYTHONDONTWRITEBYTECODE otherwise leave them unwritten."""
    import compileall

    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        return bool(compileall.compile_dir(package, quiet=2))
    except OSError:
        return False


def install(
    path: Path,
    command: str | None = None,
    deny_rules: bool = True,
    formatter: bool = False,
    statusline: bool = False,
) -> list[str]:
    """Merge mnemo's hooks and deny rules (and, with `formatter`, the format hook; with
    `statusline`, the status line unless one is set) into a settings file. Idempotent.
    Returns a report."""
    command = command or mnemo_command()
    data = _read(path)
    hooks = data.setdefault("hooks", {})
    added_commands: list[str] = []
    report = []
    for event, matcher, name, timeout in [*HOOKS, *([FORMAT_HOOK] if formatter else [])]:
        line = hook_line(command, name)
        groups = hooks.setdefault(event, [])
        mine = [g for g in groups if any(h.get("command") == line for h in g.get("hooks", []))]
        if mine:
            for group in mine:  # an earlier mnemo may have wired it to other tools
                if matcher and len(group.get("hooks", [])) == 1:
                    group["matcher"] = matcher
            continue
        group: dict[str, Any] = {
            "hooks": [{"type": "command", "command": line, "timeout": timeout}]
        }
        if matcher:
            group = {"matcher": matcher, **group}
        groups.append(group)
        added_commands.append(line)
        report.append(f"hook {event}{f' [{matcher}]' if matcher else ''} -> {name}")
    added_rules: list[str] = []
    records = _records()
    entry = records.setdefault(str(path), {"commands": [], "deny": []})
    # Rules an earlier mnemo added that this one no longer writes (e.g. `Bash(rm -rf /*)`: in
    # Claude Code `*` is a wildcard, so it denied every `rm -rf /some/path`).
    retired = [r for r in entry["deny"] if r not in guard.PERMISSION_DENY_RULES]
    if retired:
        deny = data.get("permissions", {}).get("deny", [])
        data.setdefault("permissions", {})["deny"] = [r for r in deny if r not in retired]
        entry["deny"] = [r for r in entry["deny"] if r not in retired]
        report.append(f"removed {len(retired)} permissions.deny rules mnemo no longer uses")
    old_lines = {hook_line(command, name) for name in RETIRED_HOOKS} & set(entry["commands"])
    if old_lines and _remove_hooks(data, old_lines):
        retired.extend(sorted(old_lines))
        entry["commands"] = [c for c in entry["commands"] if c not in old_lines]
        report.append(f"removed {len(old_lines)} hooks mnemo no longer uses")
    if deny_rules:
        deny = data.setdefault("permissions", {}).setdefault("deny", [])
        for rule in guard.PERMISSION_DENY_RULES:
            if rule not in deny:
                deny.append(rule)
                added_rules.append(rule)
        if added_rules:
            report.append(f"{len(added_rules)} permissions.deny rules")
    added_statusline = False
    if statusline:
        line = {"type": "command", "command": f"{command} statusline"}
        current = data.get("statusLine")
        if current is None:
            data["statusLine"] = line
            added_statusline = True
            report.append("status line -> mnemo statusline")
        elif current != line:
            report.append("a status line is already set; left unchanged")
    if not added_commands and not added_rules and not retired and not added_statusline:
        return ["already installed; nothing changed"]
    backup = _write(path, data)
    if backup:
        report.append(f"backup of the previous file: {backup}")
    entry["commands"] = sorted(set(entry["commands"]) | set(added_commands))
    entry["deny"] = sorted(set(entry["deny"]) | set(added_rules))
    if added_statusline:
        entry["statusline"] = True
    _save_records(records)
    return report


def uninstall(path: Path) -> list[str]:
    records = _records()
    entry = records.pop(str(path), None)
    if not entry:
        return [f"nothing recorded as installed by mnemo in {path}"]
    data = _read(path)
    removed = _remove_hooks(data, set(entry.get("commands", [])))
    status = data.get("statusLine") or {}
    if entry.get("statusline") and str(status.get("command", "")).endswith(" statusline"):
        del data["statusLine"]
    rules = set(entry.get("deny", []))
    permissions = data.get("permissions", {})
    if "deny" in permissions:
        before = len(permissions["deny"])
        permissions["deny"] = [r for r in permissions["deny"] if r not in rules]
        removed_rules = before - len(permissions["deny"])
        if not permissions["deny"]:
            del permissions["deny"]
        if not permissions:
            del data["permissions"]
    else:
        removed_rules = 0
    _write(path, data)
    _save_records(records)
    return [f"removed {removed} hooks and {removed_rules} permissions.deny rules from {path}"]


def _remove_hooks(data: dict[str, Any], commands: set[str]) -> int:
    """Drop the hook handlers running one of `commands`, and any group or event left empty.
    Returns how many were dropped."""
    hooks = data.get("hooks", {})
    removed = 0
    for event in list(hooks):
        kept_groups = []
        for group in hooks[event]:
            handlers = [h for h in group.get("hooks", []) if h.get("command") not in commands]
            removed += len(group.get("hooks", [])) - len(handlers)
            if handlers:
                kept_groups.append({**group, "hooks": handlers})
        if kept_groups:
            hooks[event] = kept_groups
        else:
            del hooks[event]
    if "hooks" in data and not hooks:
        del data["hooks"]
    return removed


def _data_line(url: str) -> list[str]:
    """Which memory the local server on `url` serves, as it recorded when it started."""
    from urllib.parse import urlsplit

    from mnemo.claude.launcher import LOCAL_HOSTS, recorded_server

    parts = urlsplit(url)
    if parts.hostname not in LOCAL_HOSTS:
        return []
    record = recorded_server(state_dir(), parts.port or 8283)
    if not record:
        return [f"warn no record of the data the server on port {parts.port or 8283} serves"]
    if record.get("database_url"):
        where = "PostgreSQL " + record["database_url"].split("@")[-1]
    else:
        where = f"{record.get('data_dir')} (SQLite)"
    return [f"ok   data: {where}; a server a session starts serves the same"]


def doctor(project_dir: Path) -> tuple[bool, list[str]]:
    """Check what a working setup needs; each line says what is wrong and how to fix it."""
    config = ClientConfig.load()
    lines: list[str] = []
    ok = True
    client = Client(config.url, config.api_key, connect_timeout=1.0)
    started = time.perf_counter()
    try:
        client.request("GET", "/v1/health/")
        lines.append(
            f"ok   server {config.url} answers ({(time.perf_counter() - started) * 1000:.0f} ms)"
        )
    except (Unreachable, ApiError) as exc:
        ok = False
        lines.append(
            f"FAIL server {config.url} unreachable ({exc}); run `mnemo serve` or ./scripts/start"
        )
    lines.extend(_data_line(config.url))
    try:
        client.agents(limit=1)
        lines.append("ok   API requests accepted" + (" (API key)" if config.api_key else ""))
    except ApiError as exc:
        ok = False
        fix = (
            f"set MNEMO_API_KEY or api_key in {config_file.path()} to the server's key"
            if exc.status == 401
            else "see the server's message"
        )
        lines.append(f"FAIL API request refused ({exc}); {fix}")
    except Unreachable:
        pass
    found_settings = [
        p
        for p in (settings_path(project_dir, False), settings_path(None, True))
        if "hook session-start" in (p.read_text() if p.is_file() else "")
    ]
    if found_settings:
        lines.append("ok   hooks installed in " + ", ".join(map(str, found_settings)))
        for path in found_settings:
            for event in json.loads(path.read_text()).get("hooks", {}).values():
                for group in event:
                    for handler in group.get("hooks", []):
                        # A gated hook is `[ -d … ] || …; <mnemo> hook …`: check the mnemo.
                        command = handler.get("command", "").rsplit("; ", 1)[-1]
                        exe = shlex.split(command)[:1]
                        if (
                            " hook " in handler.get("command", "")
                            and exe
                            and not Path(exe[0]).exists()
                            and not shutil.which(exe[0])
                        ):
                            ok = False
                            lines.append(
                                f"FAIL hook command {exe[0]} does not exist; "
                                "run `mnemo install` again"
                            )
    else:
        ok = False
        lines.append("FAIL no mnemo hooks in project or user settings; run `mnemo install`")
    spool = Spool(os.path.join(state_dir(), "spool")).pending()
    lines.append(("warn " if spool else "ok   ") + f"{spool} writes waiting in the spool")
    samples = []
    payload = json.dumps(
        {
            "hook_event_name": "UserPromptSubmit",
            "session_id": "doctor",
            "cwd": str(project_dir),
            "prompt": "ok",
        }
    )
    for _ in range(5):
        began = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "mnemo", "hook", "user-prompt-submit"],
            input=payload,
            text=True,
            capture_output=True,
        )
        samples.append((time.perf_counter() - began) * 1000)
    p50 = sorted(samples)[len(samples) // 2]
    lines.append(
        ("ok   " if p50 < 300 else "warn ") + f"hook start-up p50 {p50:.0f} ms over 5 runs"
    )
    return ok, lines


def status(project_dir: Path) -> list[str]:
    config = ClientConfig.load()
    root = project.project_root(str(project_dir))
    client = Client(config.url, config.api_key, connect_timeout=1.0)
    lines = [f"project: {root}"]
    agent_id = config.agent_id or project.cached_agent(state_dir(), root)
    try:
        if not agent_id:
            found = client.agents(name=project.agent_name(root), limit=1)
            agent_id = found[0]["id"] if found else None
        if not agent_id:
            return [*lines, "no memory yet for this project (it is created at the first session)"]
        agent = client.agent(agent_id)
        lines.append(f"agent:   {agent['name']} ({agent_id})")
        for block in agent.get("blocks", []):
            lines.append(f"  block {block['label']}: {len(block['value'])}/{block['limit']} chars")
        lines.append(f"archival passages: {client.count(agent_id):,}")
        sessions = client.session_summaries(agent_id, 3)
        lines.append("last sessions:" if sessions else "no session summaries yet")
        for item in sessions:
            first = item["text"].splitlines()[1:2] or item["text"].splitlines()[:1]
            lines.append(f"  {item['created_at'][:16]}  {first[0][:100]}")
    except Unreachable:
        lines.append(f"server {config.url} is not running")
    except ApiError as exc:
        lines.append(f"server error: {exc}")
    return lines
