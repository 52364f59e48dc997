"""The docs follow the code: every setting is documented in the README, and every file or
link the docs cite exists (as datasette's test_docs.py keeps its docs honest)."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from mnemo.config import Settings
from mnemo.remote.config import ClientConfig

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
CITED_PATH = re.compile(r"`((?:src|bench|scripts|tests|deploy|docs|hooks)/[^`\s:*<>]+)`")
LINK = re.compile(r"\]\(([^)#\s]+)")


@pytest.mark.parametrize(
    "name", [f.name for f in dataclasses.fields(Settings)] + list(ClientConfig.DEFAULTS)
)
def test_every_setting_is_in_the_readme(name: str) -> None:
    assert f"`{name}`" in (ROOT / "README.md").read_text()


@pytest.mark.parametrize("doc", DOCS, ids=[d.name for d in DOCS])
def test_cited_files_exist(doc: Path) -> None:
    text = doc.read_text()
    missing = [
        target
        for target in LINK.findall(text)
        if not target.startswith(("http://", "https://", "mailto:"))
        and not (doc.parent / target).exists()
    ]
    missing += [p for p in CITED_PATH.findall(text) if not (ROOT / p.rstrip(".,")).exists()]
    assert missing == []


def test_unknown_settings_and_a_missing_config_file_are_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mnemo.config_file import ConfigError

    config = tmp_path / "config.toml"
    monkeypatch.setenv("MNEMO_CONFIG", str(config))
    with pytest.raises(ConfigError, match="no such file"):
        Settings.load()
    with pytest.raises(ConfigError, match="no such file"):
        ClientConfig.load()
    config.write_text('prot = 8300\nurl = "http://127.0.0.1:8300"\n[hooks]\nguard = "maybe"\n')
    with pytest.raises(ConfigError, match=r"unknown setting.*prot"):
        Settings.load()
    with pytest.raises(ConfigError, match="guard: 'maybe' is not a bool"):
        ClientConfig.load()
    config.write_text('port = 8300\nagent_id = "agent-x"\n[hooks]\nguard = false\n')
    assert Settings.load().port == 8300
    hooks = ClientConfig.load()
    assert hooks.guard is False and hooks.agent_id == "agent-x"
    monkeypatch.setenv("MNEMO_GUARD", "on")
    assert ClientConfig.load().guard is True
