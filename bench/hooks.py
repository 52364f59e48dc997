"""Hook latency: wall time of the hook programs as Claude Code runs them (a fresh process each).

Measured in one run, on one machine, against a warm server holding 10,000 passages for the
project: a bare `python -c pass`, the server's own search time for the same prompt, our
`mnemo hook user-prompt-submit`, the same lookup written the seed's way (importing letta_client),
`session-start` with the server up and down, and `post-tool-use` storing a memory (the first
edit of a file, a failed command) through the spool and a background writer.

    .venv/bin/python bench/hooks.py [--passages 10000] [--runs 40]

Budgets (issue #3): user-prompt-submit p50 within 2x of (python -c pass + server search time),
p95 <= 150 ms; session-start p95 <= 300 ms with the server up, <= 100 ms to give up when down.

`--cli-sessions N` (default 5) also times N one-step sessions of the real Claude Code CLI
(tests/claude/cli, installed by the test suite) against a scripted Messages API, with mnemo's
hooks installed and without, interleaved. Budget (issue #24): with/without <= 1.3x and
<= +250 ms per session.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from latency import add_embedding_option, free_port, sentences, serving, vocabulary

PROMPT = "why did the uploader retry test fail with a timeout after the last refactor"


def timed(fn: Any, runs: int) -> dict[str, float]:
    samples = []
    for _ in range(runs):
        began = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - began) * 1000)
    samples.sort()
    return {
        "p50_ms": round(statistics.median(samples), 1),
        "p95_ms": round(samples[max(0, int(len(samples) * 0.95) - 1)], 1),
    }


def run(args: list[str], stdin: str, env: dict[str, str]) -> None:
    subprocess.run(args, input=stdin, capture_output=True, text=True, env=env, check=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--passages", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--cli-sessions", type=int, default=5)
    add_embedding_option(parser)
    parser.add_argument(
        "--prompt-words",
        type=int,
        default=0,
        help="lengthen the prompt with this many words of pasted text (a log, a diff)",
    )
    args = parser.parse_args()
    prompt = PROMPT
    if args.prompt_words:
        paste = random.Random(5).choices(vocabulary(), k=args.prompt_words)
        prompt = f"{PROMPT}\n{' '.join(paste)}"[:2000]
    python = sys.executable
    mnemo = str(Path(python).with_name("mnemo"))
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        server = serving(tmp_path / "data", {"MNEMO_DEFAULT_EMBEDDING": args.embedding})
        with server as (_process, url, _):
            project = tmp_path / "project"
            project.mkdir()
            subprocess.run(["git", "init", "-q", str(project)], check=True)
            (project / "README.md").write_text("# Uploader\nUploads files with retries.\n")
            env = {k: v for k, v in os.environ.items() if not k.startswith(("MNEMO_", "XDG_"))}
            (tmp_path / "none.toml").touch()
            env.update(
                HOME=str(tmp_path / "home"),
                MNEMO_URL=url,
                MNEMO_AUTOSTART="0",
                MNEMO_CONFIG=str(tmp_path / "none.toml"),
            )
            start_payload = json.dumps(
                {
                    "hook_event_name": "SessionStart",
                    "source": "startup",
                    "session_id": "bench",
                    "cwd": str(project),
                }
            )
            run([mnemo, "hook", "session-start"], start_payload, env)
            cache = next((tmp_path / "home/.local/state/mnemo/projects").glob("*.json"))
            agent_id = json.loads(cache.read_text())["agent_id"]
            rng = random.Random(3)
            words = vocabulary()
            with httpx.Client(base_url=url, timeout=600) as client:
                for begin in range(0, args.passages, 1000):
                    batch = [
                        {"text": t} for t in sentences(rng, words, min(1000, args.passages - begin))
                    ]
                    client.post(
                        f"/v1/agents/{agent_id}/archival-memory/batch", json={"passages": batch}
                    ).raise_for_status()
                search_url = f"/v1/agents/{agent_id}/archival-memory/search"
                client.get(search_url, params={"query": prompt, "top_k": 8})
                results["server_search"] = timed(
                    lambda: client.get(
                        search_url, params={"query": prompt + str(random.random()), "top_k": 8}
                    ),
                    args.runs,
                )
            results["python_c_pass"] = timed(
                lambda: run([python, "-c", "pass"], "", env), args.runs
            )

            def prompt_payload() -> str:
                return json.dumps(
                    {
                        "hook_event_name": "UserPromptSubmit",
                        "session_id": f"s{random.random()}",
                        "cwd": str(project),
                        "prompt": f"{random.random()} {prompt}",
                    }
                )

            results["hook_user_prompt_submit"] = timed(
                lambda: run([mnemo, "hook", "user-prompt-submit"], prompt_payload(), env), args.runs
            )
            seed_way = (
                "import sys; from letta_client import Letta\n"
                f"client = Letta(base_url={url!r})\n"
                f"client.agents.passages.search({agent_id!r}, query=sys.stdin.read(), top_k=5)\n"
            )
            results["seed_style_letta_client_hook"] = timed(
                lambda: run([python, "-c", seed_way], prompt, env), max(10, args.runs // 4)
            )
            results["hook_session_start_server_up"] = timed(
                lambda: run([mnemo, "hook", "session-start"], start_payload, env), args.runs
            )
            down = {**env, "MNEMO_URL": f"http://127.0.0.1:{free_port()}"}
            results["hook_session_start_server_down"] = timed(
                lambda: run([mnemo, "hook", "session-start"], start_payload, down), args.runs
            )
            results.update(post_tool_use_timings(mnemo, project, env, args.runs))
            if args.cli_sessions:
                results["cli_sessions"] = cli_sessions(url, tmp_path, args.cli_sessions)
    floor = results["python_c_pass"]["p50_ms"] + results["server_search"]["p50_ms"]
    hook = results["hook_user_prompt_submit"]
    results["ratios"] = {
        "prompt_hook_p50_over_floor": round(hook["p50_ms"] / floor, 2),
        "seed_style_over_prompt_hook_p50": round(
            results["seed_style_letta_client_hook"]["p50_ms"] / hook["p50_ms"], 1
        ),
    }
    print(json.dumps(results, indent=2))


ROOT = Path(__file__).resolve().parents[1]
EDITED_CODE = (
    "def upload(path, retries=3):\n    for attempt in range(retries):\n        try:\n"
    "            return client.put(path)\n        except TimeoutError:\n            continue\n"
)
FAILURE_OUTPUT = "Exit code 1\n" + "E   AssertionError: upload timed out after 3 retries\n" * 8


def post_tool_use_timings(
    mnemo: str, project: Path, env: dict[str, str], runs: int
) -> dict[str, dict[str, float]]:
    """`post-tool-use` for a file's first edit and for a failed command: each stores a memory."""
    numbers = iter(range(10**9))

    def payload(event: str, tool: str, tool_input: dict[str, Any], **more: Any) -> str:
        common = {"hook_event_name": event, "session_id": "bench", "cwd": str(project)}
        return json.dumps({**common, "tool_name": tool, "tool_input": tool_input, **more})

    def edit() -> str:
        path = str(project / f"src/module_{next(numbers)}.py")
        change = {"file_path": path, "old_string": "pass", "new_string": EDITED_CODE}
        return payload("PostToolUse", "Edit", change, tool_response={})

    def failure() -> str:
        command = {"command": f"pytest tests/test_upload.py -k retry_{next(numbers)}"}
        return payload("PostToolUseFailure", "Bash", command, error=FAILURE_OUTPUT)

    hook = [mnemo, "hook", "post-tool-use"]
    return {
        "hook_post_tool_use_first_edit": timed(lambda: run(hook, edit(), env), runs),
        "hook_post_tool_use_failed_command": timed(lambda: run(hook, failure(), env), runs),
    }


def cli_sessions(url: str, tmp_path: Path, runs: int) -> dict[str, Any]:
    """Wall time of one-step `claude -p` sessions with mnemo's hooks installed and without."""
    claude = ROOT / "tests" / "claude" / "cli" / "node_modules" / ".bin" / "claude"
    if not claude.exists():
        return {"skipped": f"{claude} is missing: run the test suite once (it installs it)"}
    sys.path.insert(0, str(ROOT))
    from tests.claude.messages_api import ScriptedAPI, ToolUse

    api = ScriptedAPI()
    project = tmp_path / "cli-project"
    project.mkdir()
    subprocess.run(["git", "init", "-q", str(project)], check=True)
    base = {k: v for k, v in os.environ.items() if not k.startswith(("MNEMO_", "CLAUDE", "XDG_"))}
    (tmp_path / "cli.toml").touch()
    homes = {}
    for name in ("with_hooks", "without"):
        home = tmp_path / f"home-{name}"
        home.mkdir()
        homes[name] = {
            **base,
            "HOME": str(home),
            "MNEMO_URL": url,
            "MNEMO_AUTOSTART": "0",
            "MNEMO_CONFIG": str(tmp_path / "cli.toml"),
            "ANTHROPIC_BASE_URL": api.url,
            "ANTHROPIC_API_KEY": "bench-key",
            "DISABLE_AUTOUPDATER": "1",
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        }
    subprocess.run(
        [sys.executable, "-m", "mnemo", "install", "--user"],
        env=homes["with_hooks"],
        check=True,
        capture_output=True,
    )
    samples: dict[str, list[float]] = {name: [] for name in homes}
    command = [str(claude), "-p", "check", "--output-format", "json"]
    command += ["--permission-mode", "acceptEdits", "--allowedTools", "Bash"]
    for _ in range(runs):
        for name, env in homes.items():
            api.turns = [[ToolUse("Bash", {"command": "true"})], ["Done."]]
            began = time.perf_counter()
            subprocess.run(
                command, env=env, cwd=project, check=True, capture_output=True, timeout=120
            )
            samples[name].append((time.perf_counter() - began) * 1000)
    api.close()
    with_hooks = statistics.median(samples["with_hooks"])
    without = statistics.median(samples["without"])
    return {
        "runs": runs,
        "with_hooks_p50_ms": round(with_hooks, 1),
        "without_p50_ms": round(without, 1),
        "ratio": round(with_hooks / without, 2),
        "added_ms": round(with_hooks - without, 1),
    }


if __name__ == "__main__":
    main()
