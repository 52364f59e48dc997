"""Hook settings: defaults < config file ([hooks] and top-level keys) < MNEMO_* environment.

Standard library only. The config file is the same TOML the server reads.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

DEFAULT_URL = "http://127.0.0.1:8283"


def config_file() -> Path:
    explicit = os.environ.get("MNEMO_CONFIG")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "mnemo" / "config.toml"


def state_dir() -> Path:
    explicit = os.environ.get("MNEMO_STATE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "state"
    )
    return Path(base) / "mnemo"


@dataclass
class HookConfig:
    url: str = DEFAULT_URL
    api_key: str = ""
    agent_id: str = ""
    disable: bool = False
    connect_timeout: float = 0.3  # seconds to reach the server before giving up
    read_timeout: float = 2.0
    session_budget: int = 6000  # characters injected at session start
    prompt_budget: int = 2000  # characters injected per prompt
    prompt_top_k: int = 8
    min_similarity: float = 0.3  # cosine between prompt and memory to count as relevant
    min_prompt_chars: int = 12
    recent_sessions: int = 3
    autostart: bool = True
    exclude: list[str] = field(default_factory=list)  # glob patterns of project paths
    guard: bool = True
    guard_disable: list[str] = field(default_factory=list)
    guard_deny: list[str] = field(default_factory=list)
    guard_allow: list[str] = field(default_factory=list)

    @classmethod
    def load(cls) -> HookConfig:
        values: dict[str, Any] = {}
        path = config_file()
        try:
            data = tomllib.loads(path.read_text()) if path.is_file() else {}
        except (OSError, tomllib.TOMLDecodeError):
            data = {}
        known = {f.name for f in fields(cls)}
        for source in (data, data.get("hooks", {})):
            values.update({k: v for k, v in source.items() if k in known})
        if data.get("api_key") and "api_key" not in data.get("hooks", {}):
            values["api_key"] = data["api_key"]
        env = os.environ
        for f in fields(cls):
            raw = env.get(f"MNEMO_{f.name.upper()}")
            if raw is None or raw == "":
                continue
            values[f.name] = _parse(raw, f.type)
        config = cls(**values)
        config.url = config.url.rstrip("/")
        return config


def _parse(raw: str, kind: Any) -> Any:
    kind = str(kind)
    if kind == "bool":
        return raw.strip().lower() in ("1", "true", "yes", "on")
    if kind == "int":
        return int(raw)
    if kind == "float":
        return float(raw)
    if kind.startswith("list"):
        return [item.strip() for item in raw.split(",") if item.strip()]
    return raw
