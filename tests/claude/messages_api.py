"""A scripted stand-in for the Anthropic Messages API, for driving the real Claude Code CLI.

Each request of the agent loop (one that offers tools) gets the next scripted turn, streamed as
server-sent events: text and `tool_use` blocks. Other requests (titles, summaries by a small
model) get a short text. Every request body is kept, so tests can read what the model was sent.
"""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class ToolUse:
    name: str
    input: dict[str, Any]


Turn = list["str | ToolUse"]  # what the model answers one request with


@dataclass
class ScriptedAPI:
    turns: list[Turn] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                if self.path.startswith("/v1/messages/count_tokens"):
                    self._json({"input_tokens": 100})
                    return
                turn = api._answer(body)
                if body.get("stream"):
                    self._stream(turn, str(body.get("model")))
                else:
                    self._json(_message(turn, str(body.get("model")), "end_turn"))

            def do_GET(self) -> None:
                self.send_response(404)
                self.end_headers()

            def _json(self, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _stream(self, turn: Turn, model: str) -> None:
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.end_headers()
                for name, data in _events(turn, model):
                    self.wfile.write(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode())
                self.wfile.flush()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def _answer(self, body: dict[str, Any]) -> Turn:
        with self._lock:
            if not body.get("tools"):
                return ["ok"]
            self.requests.append(body)
            return self.turns.pop(0) if self.turns else ["Done."]

    def tool_results(self) -> list[dict[str, Any]]:
        """Every tool_result block the CLI sent back, in order, each once (a request carries
        the whole conversation, and the CLI may add system messages after a result)."""
        results: dict[str, dict[str, Any]] = {}
        for body in self.requests:
            for message in body.get("messages", []):
                content = message.get("content")
                for block in content if isinstance(content, list) else []:
                    if isinstance(block, dict) and block.get("type") == "tool_result":
                        results.setdefault(str(block.get("tool_use_id")), block)
        return list(results.values())

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def result_text(block: dict[str, Any]) -> str:
    content = block.get("content")
    if isinstance(content, list):
        return "\n".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return str(content or "")


def _blocks(turn: Turn) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    for item in turn:
        if isinstance(item, ToolUse):
            blocks.append(
                {
                    "type": "tool_use",
                    "id": "toolu_" + uuid.uuid4().hex[:20],
                    "name": item.name,
                    "input": item.input,
                }
            )
        else:
            blocks.append({"type": "text", "text": item})
    return blocks


def _message(turn: Turn, model: str, stop: str) -> dict[str, Any]:
    return {
        "id": "msg_" + uuid.uuid4().hex[:20],
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": _blocks(turn),
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": {"input_tokens": 100, "output_tokens": 10},
    }


def _events(turn: Turn, model: str) -> list[tuple[str, dict[str, Any]]]:
    blocks = _blocks(turn)
    stop = "tool_use" if any(b["type"] == "tool_use" for b in blocks) else "end_turn"
    start = {**_message([], model, stop), "stop_reason": None}
    events: list[tuple[str, dict[str, Any]]] = [
        ("message_start", {"type": "message_start", "message": start})
    ]
    for index, block in enumerate(blocks):
        if block["type"] == "text":
            opened = {"type": "text", "text": ""}
            delta = {"type": "text_delta", "text": block["text"]}
        else:
            opened = {**block, "input": {}}
            delta = {"type": "input_json_delta", "partial_json": json.dumps(block["input"])}
        events += [
            (
                "content_block_start",
                {"type": "content_block_start", "index": index, "content_block": opened},
            ),
            (
                "content_block_delta",
                {"type": "content_block_delta", "index": index, "delta": delta},
            ),
            ("content_block_stop", {"type": "content_block_stop", "index": index}),
        ]
    events += [
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop, "stop_sequence": None},
                "usage": {"output_tokens": 10},
            },
        ),
        ("message_stop", {"type": "message_stop"}),
    ]
    return events
