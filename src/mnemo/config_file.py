"""The one config file, read alike by the server and every client (hooks, CLI, SDK, MCP).

Where: `$MNEMO_CONFIG`, else `$XDG_CONFIG_HOME/mnemo/config.toml`, else
`~/.config/mnemo/config.toml`, on every platform. Keys at the top level apply to every part of
mnemo; the `[server]` and `[hooks]` tables hold keys for one part only; `[retention]` holds
prune policies. A `MNEMO_CONFIG` that names no file, a file that is not TOML, and an unknown
key or table are errors: a setting that is silently ignored is a guard that is silently off.

Standard library only, and cheap: every hook process reads this file.
"""

from __future__ import annotations

import os

from mnemo.remote.errors import ConfigError

TYPE_CHECKING = False  # typing costs a hook ~4 ms to import; annotations only
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Any

TABLES = ("server", "hooks", "retention")
TRUE = ("1", "true", "yes", "on")
FALSE = ("0", "false", "no", "off", "")


def path() -> str:
    explicit = os.environ.get("MNEMO_CONFIG")
    if explicit:
        return explicit
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return os.path.join(base, "mnemo", "config.toml")


def load() -> dict[str, Any]:
    """The parsed file; {} when there is none at the default path."""
    where = path()
    try:
        with open(where, encoding="utf-8") as file:
            text = file.read()
    except FileNotFoundError:
        if os.environ.get("MNEMO_CONFIG"):
            raise ConfigError(f"MNEMO_CONFIG={where}: no such file") from None
        return {}
    except OSError as exc:
        raise ConfigError(f"config file {where}: {exc}") from None
    if not text.strip():
        return {}
    import tomllib  # imports typing: ~4 ms a hook pays only when there is something to read

    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {where} is not valid TOML: {exc}") from None
    for table in TABLES:
        if table in document and not isinstance(document[table], dict):
            raise ConfigError(f"config file {where}: `{table}` must be a table ([{table}])")
    return document


def settings(document: dict[str, Any], table: str) -> dict[str, Any]:
    """The settings one part of mnemo reads: the top-level keys, then its own table's."""
    values = {k: v for k, v in document.items() if k not in TABLES}
    values.update(document.get(table, {}))
    return values


def check_keys(document: dict[str, Any], known: Iterable[str]) -> None:
    """Refuse keys no part of mnemo reads (a typo would otherwise be ignored)."""
    allowed = set(known)
    unknown = sorted(
        {k for k in document if k not in TABLES and k not in allowed}
        | {
            f"{table}.{k}"
            for table in ("server", "hooks")
            for k in document.get(table, {})
            if k not in allowed
        }
    )
    if unknown:
        raise ConfigError(
            f"config file {path()}: unknown setting(s) {', '.join(unknown)}; "
            "the settings are listed in README.md (Configuration)"
        )


def parse_bool(name: str, raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in TRUE:
        return True
    if text in FALSE:
        return False
    raise ConfigError(f"{name}: {raw!r} is not a boolean (use true or false)")
