"""`mnemo hook <event>`: the Claude Code hook programs (standard library only).

Each reads Claude Code's JSON from stdin, answers on stdout in the documented shape, and exits 0
on any internal failure with one short line on stderr: memory must never break or slow a session.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from collections.abc import Callable

from mnemo.claude import EDIT_TOOLS, context, state
from mnemo.claude.naming import program, relative
from mnemo.redact import redact
from mnemo.remote import project, queries
from mnemo.remote.client import Client
from mnemo.remote.config import ClientConfig, state_dir
from mnemo.remote.errors import ApiError, ConfigError, Unreachable
from mnemo.remote.transport import retryable

TYPE_CHECKING = False  # typing costs a hook ~4 ms to import; annotations only
if TYPE_CHECKING:
    from typing import Any

WORKER_PID = "worker.pid"  # in the state dir: the last background writer a hook started

# A prompt searches with at most this many characters: its beginning and its end, where the
# question beside a paste is (the server embeds a long query from its two ends too).
QUERY_CHARS = 2000

TRIVIAL = re.compile(
    r"^\s*(y|n|yes|no|ok|okay|k|sure|thanks?|thank you|ty|go|go on|continue|proceed|next|done|"
    r"lgtm|great|nice|cool|perfect|do it|yep|nope)\s*[.!?]*\s*$",
    re.I,
)


class Hook:
    """Everything one hook invocation needs, resolved lazily."""

    def __init__(self, payload: dict[str, Any], config: ClientConfig) -> None:
        self.payload = payload
        self.config = config
        self.state = state_dir()
        self.session_id = str(payload.get("session_id") or "unknown")
        cwd = str(payload.get("cwd") or os.environ.get("CLAUDE_PROJECT_DIR") or os.getcwd())
        self.cwd = cwd
        self.root = project.project_root(cwd)
        self._client: Client | None = None

    @property
    def client(self) -> Client:
        """Made on first use: the guard never needs the server, nor a valid URL."""
        if self._client is None:
            self._client = Client(
                self.config.url,
                self.config.api_key,
                self.config.read_timeout,
                connect_timeout=self.config.connect_timeout,
                spool_dir=os.path.join(self.state, "spool"),
            )
        return self._client

    @property
    def excluded(self) -> bool:
        if self.config.disable:
            return True
        if not self.config.exclude:
            return False
        import fnmatch

        return any(
            fnmatch.fnmatch(str(self.root), pattern) or fnmatch.fnmatch(self.cwd, pattern)
            for pattern in self.config.exclude
        )

    def agent_id(self, create: bool = True) -> str | None:
        """The project's agent; None when it is not known yet and the server is down or refuses
        for a reason that may pass (e.g. a missing API key)."""
        if self.config.agent_id:
            return self.config.agent_id
        cached = project.cached_agent(self.state, self.root)
        if cached or not create:
            return cached
        try:
            return project.ensure_agent(self.client, self.state, self.root)
        except Unreachable:
            return None
        except ApiError as exc:
            if not retryable(exc.status):
                raise
            print(f"mnemo: {exc}; writes wait in the spool", file=sys.stderr)
            return None

    def write(self, path: str, body: Any, key: str, background: bool = False) -> None:
        """POST to `/v1/agents/{agent}<path>`; spooled when the server is down, and spooled
        with the project root when even the agent id is not known yet. In the `background`,
        once the agent is known, the write goes to the spool at once and a detached writer
        sends it: the hook does not wait for the server to embed and store it."""
        spool = self.client.spool
        assert spool is not None
        agent_id = self.agent_id()
        if agent_id is None:
            spool.add("POST", path, body, key, {"project_root": str(self.root)})
            return
        context = {"project_root": str(self.root), "agent_path": path}
        target = queries.agent_path(agent_id) + path
        if not background:
            self.client.write("POST", target, body, key, context)
            return
        spool.add("POST", target, body, key, context)
        if not spool.replaying():
            self.start_replay()

    def start_replay(self) -> None:
        """Send the spool from a detached writer (`hook replay`), its pid in WORKER_PID."""
        from mnemo.claude import launcher

        pid = launcher.detached(["hook", "replay"], os.path.join(self.state, "worker.log"))
        with open(os.path.join(self.state, WORKER_PID), "w") as file:
            file.write(str(pid))

    def resolve_spooled(self, entry: dict[str, Any], stale: bool = False) -> str:
        """Where a spooled write goes: the project's agent (looked up again when the one it
        was written for is `stale`, e.g. deleted and re-created), or the path it was given."""
        context = entry.get("context") or {}
        root = context.get("project_root")
        if not root:
            return str(entry["path"])
        suffix = context.get("agent_path")
        if suffix is not None and not stale:
            return str(entry["path"])  # written for a known agent
        agent_id = self.config.agent_id or project.ensure_agent(
            self.client, self.state, root, verify=stale
        )
        return queries.agent_path(agent_id) + (entry["path"] if suffix is None else suffix)

    def remember(
        self,
        text: str,
        kind: str,
        metadata: dict[str, Any],
        key: str | None = None,
        background: bool = False,
    ) -> str:
        """Store a typed passage (spooled if the server is down; see `write` for the
        `background`). Returns its idempotency key."""
        key = key or os.urandom(16).hex()
        meta = {"session_id": self.session_id, "source": "claude-code", **metadata}
        meta = {k: redact(v)[0] if isinstance(v, str) else v for k, v in meta.items()}
        body = queries.passage_body(redact(text)[0], kind, None, meta)
        self.write("/archival-memory", body, key, background)
        return key


# ---------------------------------------------------------------------- events


def session_start(hook: Hook) -> dict[str, Any] | None:
    if not hook.client.health():
        if hook.config.autostart:
            from mnemo.claude import launcher

            launcher.start_server(hook.config.url, hook.state)
        return None
    if hook.client.pending():
        hook.start_replay()
    agent_id = project.ensure_agent(hook.client, hook.state, hook.root, verify=True)
    blocks = hook.client.blocks(agent_id)
    summaries = hook.client.session_summaries(agent_id, hook.config.recent_sessions)
    name = os.path.basename(hook.root)
    query = " ".join([name, *(s.get("text", "")[:300] for s in summaries[:1])])
    found = hook.client.search(agent_id, query, top_k=10)
    seen_text: set[str] = {s.get("text", "") for s in summaries}
    relevant = []
    for result in found:
        kind = (result.get("metadata") or {}).get("type")
        if kind == queries.SESSION_SUMMARY or result["content"] in seen_text:
            continue
        seen_text.add(result["content"])
        relevant.append(result)
    text, shown = context.session_context(
        os.path.basename(hook.root), blocks, summaries, relevant, hook.config.session_budget
    )
    with state.update(hook.state, hook.session_id) as data:
        data.setdefault("started", time.time())
        data["injected"] = sorted(set(data.get("injected", [])) | set(shown))
    return {"hookSpecificOutput": {"hookEventName": "SessionStart", "additionalContext": text}}


def user_prompt_submit(hook: Hook) -> dict[str, Any] | None:
    prompt = str(hook.payload.get("prompt") or "").strip()
    if (
        len(prompt) < hook.config.min_prompt_chars
        or TRIVIAL.match(prompt)
        or prompt.startswith("/")
    ):
        return None
    agent_id = hook.agent_id(create=False)
    if not agent_id:
        return None
    query = both_ends(redact(prompt)[0], QUERY_CHARS)
    found = hook.client.search(agent_id, query, top_k=hook.config.prompt_top_k)
    injected = set(state.load(hook.state, hook.session_id).get("injected", []))
    results = [
        r
        for r in found
        if r["id"] not in injected and (r.get("similarity") or 0) >= hook.config.min_similarity
    ]
    text, shown = context.prompt_context(results, hook.config.prompt_budget)
    if not text:
        return None
    with state.update(hook.state, hook.session_id) as data:
        data["injected"] = sorted(set(data.get("injected", [])) | set(shown))
    return {"hookSpecificOutput": {"hookEventName": "UserPromptSubmit", "additionalContext": text}}


def both_ends(text: str, limit: int) -> str:
    """`text`, or when longer than `limit` its beginning and its end joined by a newline,
    `limit` characters in all."""
    if len(text) <= limit:
        return text
    head = limit // 2
    return f"{text[:head]}\n{text[len(text) - (limit - head - 1) :]}"


def pre_tool_use(hook: Hook) -> dict[str, Any] | None:
    from mnemo.claude import guard

    if not hook.config.guard or hook.payload.get("tool_name") not in ("Bash", "PowerShell"):
        return None
    command = str((hook.payload.get("tool_input") or {}).get("command") or "")
    verdict = guard.check(
        command,
        cwd=hook.cwd,
        project_root=str(hook.root),
        home=os.path.expanduser("~"),
        disabled=hook.config.guard_disable,
        extra_deny=hook.config.guard_deny,
        allow=hook.config.guard_allow,
    )
    if verdict is None:
        return None
    return {
        "hookSpecificOutput": {
            "hookEventName": "PreToolUse",
            "permissionDecision": "deny",
            "permissionDecisionReason": verdict.reason,
        }
    }


def post_tool_use(hook: Hook) -> dict[str, Any] | None:
    """Memories of edits, failed commands and their fixes, sent in the background: the hook
    returns once a write is in the spool, not after the server has embedded it."""
    tool = str(hook.payload.get("tool_name") or "")
    tool_input = hook.payload.get("tool_input") or {}
    if tool in EDIT_TOOLS:
        _record_edit(hook, tool, tool_input)
    elif tool == "Bash":
        _record_command(hook, str(tool_input.get("command") or ""))
    return None


def _record_edit(hook: Hook, tool: str, tool_input: dict[str, Any]) -> None:
    path = str(tool_input.get("file_path") or tool_input.get("notebook_path") or "")
    if not path:
        return
    rel = relative(path, str(hook.root))
    response = hook.payload.get("tool_response") or {}
    operation = EDIT_TOOLS[tool]
    if tool == "Write" and isinstance(response, dict) and response.get("type") == "create":
        operation = "create"
    with state.update(hook.state, hook.session_id) as data:
        edits = data.setdefault("edits", {})
        first = rel not in edits
        edits[rel] = edits.get(rel, 0) + 1
    if not first:
        return  # one passage per file per session; the summary counts the rest
    snippet = str(tool_input.get("new_string") or tool_input.get("content") or "")
    snippet = " ".join(snippet.split())[:200]
    text = f"File {rel} changed ({operation}) in session {hook.session_id[:8]}"
    hook.remember(
        text + (f": {snippet}" if snippet else ""),
        "file_change",
        {"path": rel, "operation": operation, "tool": tool},
        background=True,
    )


def _exit_status(payload: dict[str, Any]) -> tuple[int | None, str]:
    """Exit status and error text of a Bash call, from PostToolUseFailure or PostToolUse."""
    if payload.get("hook_event_name") == "PostToolUseFailure":
        error = str(payload.get("error") or "")
        match = re.match(r"\s*Exit code (\d+)", error)
        return (int(match.group(1)) if match else 1), error
    response = payload.get("tool_response") or {}
    if isinstance(response, dict):
        for key in ("exit_code", "exitCode", "returnCode", "return_code"):
            if isinstance(response.get(key), int) and response[key] != 0:
                return response[key], str(response.get("stderr") or response.get("stdout") or "")
    return None, ""


def _record_command(hook: Hook, command: str) -> None:
    command = command.strip()
    if not command:
        return
    status, error = _exit_status(hook.payload)
    key = program(command)
    if status is not None:
        tail = " ".join(error.split())[-500:]
        event = hook.remember(
            f"Command failed (exit {status}): {command[:300]}\nError: {tail}",
            "command_failure",
            {"command": command[:500], "exit_code": status},
            background=True,
        )
        with state.update(hook.state, hook.session_id) as data:
            data.setdefault("failures", {})[key] = {
                "command": command[:500],
                "event": event,
                "error": tail[-200:],
            }
        state.mark_fix_pending(hook.state, hook.session_id)
        return
    with state.update(hook.state, hook.session_id) as data:
        failure = data.get("failures", {}).pop(key, None)
        if not data.get("failures"):
            state.clear_fix_pending(hook.state, hook.session_id)
    if failure:
        hook.remember(
            f"Fix: `{command[:300]}` succeeded after `{failure['command'][:300]}` failed "
            f"({failure['error']})",
            "command_fix",
            {
                "command": command[:500],
                "fixes_command": failure["command"],
                "fixes_event": failure["event"],
            },
            background=True,
        )


def _import_messages(hook: Hook, path: str) -> None:
    """Send transcript messages written since the last call to recall memory."""
    from mnemo.claude import transcript

    if not path:
        return
    with state.update(hook.state, hook.session_id) as data:
        offset = int(data.get("offset", 0))
        chunk = transcript.read(path, offset)
        messages = [
            {
                "role": "user" if e.kind == "user" else "assistant",
                "content": redact(e.text)[0][:100_000],
                "created_at": e.timestamp or None,
                "conversation_id": hook.session_id,
                "metadata": {"kind": e.kind} if e.kind == "compact_summary" else {},
            }
            for e in chunk.entries
        ]
        if messages:
            hook.write(
                "/messages/import", {"messages": messages}, f"messages-{hook.session_id}-{offset}"
            )
        data["offset"] = chunk.offset


def stop(hook: Hook) -> dict[str, Any] | None:
    _import_messages(hook, str(hook.payload.get("transcript_path") or ""))
    if hook.payload.get("last_assistant_message"):
        with state.update(hook.state, hook.session_id) as data:
            data["last_assistant_message"] = str(hook.payload["last_assistant_message"])[:2000]
    return None


def pre_compact(hook: Hook) -> dict[str, Any] | None:
    _import_messages(hook, str(hook.payload.get("transcript_path") or ""))
    return None


def session_end(hook: Hook) -> dict[str, Any] | None:
    """SessionEnd has ~1.5 s: hand the summary to a detached worker and return."""
    from mnemo.claude import launcher

    launcher.detached(
        ["hook", "finish-session"],
        os.path.join(hook.state, "worker.log"),
        stdin_data=json.dumps(hook.payload).encode(),
    )
    return None


def finish_session(hook: Hook) -> dict[str, Any] | None:
    """The detached end of a session: last messages, the summary passage, learnings."""
    from mnemo.claude import summary, transcript

    path = str(hook.payload.get("transcript_path") or "")
    _import_messages(hook, path)
    remembered = state.load(hook.state, hook.session_id)
    whole = transcript.read(path, 0)
    result = summary.summarise(whole, str(hook.root), remembered.get("last_assistant_message", ""))
    if result.empty:
        state.forget(hook.state, hook.session_id)
        return None
    text = summary.render(result, hook.session_id)
    hook.remember(
        text,
        "session_summary",
        {
            "files": result.files[:50],
            "duration_seconds": result.duration_seconds,
            "errors": len(result.failures),
            "reason": str(hook.payload.get("reason") or ""),
        },
        key=f"summary-{hook.session_id}",
    )
    lessons = summary.learnings(result)
    if lessons:
        hook.write(
            "/core-memory/blocks/learnings/append",
            {"text": redact("\n".join(lessons))[0]},
            f"learnings-{hook.session_id}",
        )
    state.forget(hook.state, hook.session_id)
    replay(hook)
    return None


FORMAT_TIMEOUT = 10.0  # seconds; the hook's own timeout in settings is 15


def format_file(hook: Hook) -> dict[str, Any] | None:
    """Format the Python file Claude just wrote with the project's own formatter: `ruff format`
    when the project configures ruff, else `black` when it configures black; the project's
    .venv first, then PATH. Never fails the session: a problem is one line on stderr."""
    path = str((hook.payload.get("tool_input") or {}).get("file_path") or "")
    root = str(hook.root)
    if not path.endswith((".py", ".pyi")) or not os.path.isfile(path):
        return None
    if not os.path.realpath(path).startswith(os.path.realpath(root) + os.sep):
        return None  # only the project's own files
    tool = _project_formatter(root)
    if tool is None:
        return None
    import shutil
    import subprocess

    local = os.path.join(root, ".venv", "bin", tool[0])
    executable = local if os.access(local, os.X_OK) else shutil.which(tool[0])
    if executable is None:
        print(f"mnemo format: {tool[0]} is configured but not installed", file=sys.stderr)
        return None
    try:
        done = subprocess.run(
            [executable, *tool[1:], path],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=FORMAT_TIMEOUT,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        print(f"mnemo format: {tool[0]}: {exc}", file=sys.stderr)
        return None
    if done.returncode != 0:
        print(f"mnemo format: {tool[0]}: {done.stderr.strip()[:200]}", file=sys.stderr)
    return None


def _project_formatter(root: str) -> list[str] | None:
    """The formatter the project configures: ruff (ruff.toml, .ruff.toml or [tool.ruff]),
    else black ([tool.black])."""
    if any(os.path.isfile(os.path.join(root, name)) for name in ("ruff.toml", ".ruff.toml")):
        return ["ruff", "format", "--quiet"]
    try:
        with open(os.path.join(root, "pyproject.toml"), encoding="utf-8") as file:
            pyproject = file.read()
    except OSError:
        return None
    if "[tool.ruff" in pyproject:
        return ["ruff", "format", "--quiet"]
    if "[tool.black" in pyproject:
        return ["black", "--quiet"]
    return None


def replay(hook: Hook) -> dict[str, Any] | None:
    hook.client.replay(deadline=time.monotonic() + 60, resolve=hook.resolve_spooled)
    return None


HANDLERS: dict[str, Callable[[Hook], dict[str, Any] | None]] = {
    "session-start": session_start,
    "user-prompt-submit": user_prompt_submit,
    "pre-tool-use": pre_tool_use,
    "post-tool-use": post_tool_use,
    "pre-compact": pre_compact,
    "stop": stop,
    "session-end": session_end,
    "finish-session": finish_session,
    "replay": replay,
    "format": format_file,
}


def run(event: str, stdin: Any = None, stdout: Any = None) -> int:
    """Run one hook. Always exit 0: a memory failure must not become a Claude Code error."""
    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout
    try:
        raw = stdin.read() if event != "replay" else "{}"
        payload = json.loads(raw)
        if not isinstance(payload, dict):
            raise ValueError("hook input is not a JSON object")
        try:
            config = ClientConfig.load()
        except ValueError as exc:
            if event != "pre-tool-use":
                raise ConfigError(str(exc)) from None
            # The guard never depends on the config being right: it runs with the defaults.
            print(f"mnemo {event}: {exc}; guarding with the defaults", file=sys.stderr)
            config = ClientConfig()
        hook = Hook(payload, config)
        if hook.excluded and event != "pre-tool-use":
            return 0
        reply = HANDLERS[event](hook)
    except Unreachable:
        return 0  # server down: reads return nothing, writes were spooled
    except (ApiError, OSError, ValueError, KeyError, TypeError) as exc:
        message = f"mnemo {event}: {str(exc)[:300]}"
        print(message, file=sys.stderr)
        setup = isinstance(exc, ConfigError) or (
            isinstance(exc, ApiError) and retryable(exc.status)
        )
        if event != "session-start" or not setup:
            return 0
        # A setup mistake (bad URL or config, refused key or Host) is shown to the user once
        # per session instead of leaving memory silently off; writes wait in the spool.
        reply = {"systemMessage": f"{message}. Run `mnemo doctor` for what to fix."}
    if reply:
        stdout.write(json.dumps(reply))
        stdout.flush()
    return 0
