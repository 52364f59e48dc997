"""Client settings (hooks, CLI, SDK, MCP): defaults < the config file (config_file.py: top
level, then [hooks]) < MNEMO_* environment.

Standard library only, and paths are plain strings: pathlib costs every hook process ~3 ms of
imports.
"""

from __future__ import annotations

import os

from mnemo import config_file

TYPE_CHECKING = False  # typing costs a hook ~4 ms to import; annotations only
if TYPE_CHECKING:
    from typing import Any, ClassVar

DEFAULT_URL = "http://127.0.0.1:8283"


def state_dir() -> str:
    explicit = os.environ.get("MNEMO_STATE_DIR")
    if explicit:
        return explicit
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "state"
    )
    return os.path.join(base, "mnemo")


class ClientConfig:
    """Settings of every client: the hooks, `mnemo` commands, the SDK and the stdio MCP server.
    A plain class: `dataclasses` costs a hook ~10 ms of imports (inspect), and every prompt
    pays for hook start-up."""

    DEFAULTS: ClassVar[dict[str, Any]] = {
        "url": DEFAULT_URL,
        "api_key": "",
        "agent_id": "",
        "disable": False,
        "connect_timeout": 0.3,  # seconds to reach the server before giving up
        "read_timeout": 2.0,
        "session_budget": 6000,  # characters injected at session start
        "prompt_budget": 2000,  # characters injected per prompt
        "prompt_top_k": 8,
        "min_similarity": 0.25,  # cosine between prompt and memory to count as relevant
        "min_prompt_chars": 12,
        "recent_sessions": 3,
        "autostart": True,
        "exclude": [],  # glob patterns of project paths
        "guard": True,
        "guard_disable": [],
        "guard_deny": [],
        "guard_allow": [],
    }

    url: str
    api_key: str
    agent_id: str
    disable: bool
    connect_timeout: float
    read_timeout: float
    session_budget: int
    prompt_budget: int
    prompt_top_k: int
    min_similarity: float
    min_prompt_chars: int
    recent_sessions: int
    autostart: bool
    exclude: list[str]
    guard: bool
    guard_disable: list[str]
    guard_deny: list[str]
    guard_allow: list[str]

    def __init__(self, **values: Any) -> None:
        for name, default in self.DEFAULTS.items():
            value = values.get(name, default)
            setattr(self, name, list(value) if isinstance(default, list) else value)

    @classmethod
    def load(cls) -> ClientConfig:
        """Defaults < the config file (top level, then [hooks]) < MNEMO_* environment."""
        document = config_file.load()
        values = {
            k: v for k, v in config_file.settings(document, "hooks").items() if k in cls.DEFAULTS
        }
        for name in cls.DEFAULTS:
            raw = os.environ.get(f"MNEMO_{name.upper()}")
            if raw is not None and raw != "":
                values[name] = raw
        typed = {name: _typed(name, value, cls.DEFAULTS[name]) for name, value in values.items()}
        config = cls(**typed)
        config.url = config.url.rstrip("/")
        return config


def _typed(name: str, raw: Any, default: Any) -> Any:
    """A setting from the file or the environment, typed like its default."""
    try:
        if isinstance(default, bool):
            return config_file.parse_bool(name, raw)
        if isinstance(default, list):
            if isinstance(raw, list):
                return [str(item) for item in raw]
            return [item.strip() for item in str(raw).split(",") if item.strip()]
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
        return str(raw)
    except (TypeError, ValueError):
        raise config_file.ConfigError(
            f"{name}: {raw!r} is not a {type(default).__name__} "
            f"(MNEMO_{name.upper()} or {name} in {config_file.path()})"
        ) from None
