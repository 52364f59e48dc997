"""Hook settings: defaults < config file ([hooks] and top-level keys) < MNEMO_* environment.

Standard library only, and paths are plain strings: pathlib costs every hook process ~3 ms of
imports. The config file is the same TOML the server reads.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False  # typing costs a hook ~4 ms to import; annotations only
if TYPE_CHECKING:
    from typing import Any, ClassVar

DEFAULT_URL = "http://127.0.0.1:8283"


def config_file() -> str:
    explicit = os.environ.get("MNEMO_CONFIG")
    if explicit:
        return explicit
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return os.path.join(base, "mnemo", "config.toml")


def state_dir() -> str:
    explicit = os.environ.get("MNEMO_STATE_DIR")
    if explicit:
        return explicit
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "state"
    )
    return os.path.join(base, "mnemo")


class HookConfig:
    """Settings of the hook programs. A plain class: `dataclasses` costs a hook ~10 ms of
    imports (inspect), and every prompt pays for hook start-up."""

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
    def load(cls) -> HookConfig:
        values: dict[str, Any] = {}
        path = config_file()
        data: dict[str, Any] = {}
        if os.path.isfile(path):
            import tomllib

            try:
                with open(path, encoding="utf-8") as file:
                    data = tomllib.loads(file.read())
            except tomllib.TOMLDecodeError as exc:
                raise ValueError(f"config file {path} is not valid TOML: {exc}") from None
            except OSError:
                data = {}
        for source in (data, data.get("hooks", {})):
            values.update({k: v for k, v in source.items() if k in cls.DEFAULTS})
        for name, default in cls.DEFAULTS.items():
            raw = os.environ.get(f"MNEMO_{name.upper()}")
            if raw is None or raw == "":
                continue
            try:
                values[name] = _parse(raw, default)
            except ValueError:
                raise ValueError(
                    f"MNEMO_{name.upper()}={raw!r} is not a {type(default).__name__}"
                ) from None
        config = cls(**values)
        config.url = config.url.rstrip("/")
        return config


def _parse(raw: str, default: Any) -> Any:
    """An environment value, typed like the setting's default."""
    if isinstance(default, bool):
        return raw.strip().lower() in ("1", "true", "yes", "on")
    if isinstance(default, int):
        return int(raw)
    if isinstance(default, float):
        return float(raw)
    if isinstance(default, list):
        return [item.strip() for item in raw.split(",") if item.strip()]
    return raw
