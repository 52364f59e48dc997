"""Secrets are redacted before anything is stored or indexed."""

from __future__ import annotations

import httpx
import pytest

from mnemo.redact import REDACTED, redact

SECRETS = [
    "AKIAIOSFODNN7EXAMPLE",
    "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
    "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOP",
    "sk-ant-api03-abcdefghijklmnopqrstuvwxyz012345",
    "sk-proj-abcdefghijklmnopqrstuvwxyz0123456789",
    "sk_live_abcdefghijklmnop1234",
    "xoxb-1234567890-abcdefghijkl",
    "AIzaSyA-abcdefghijklmnopqrstuvwxyz012345",
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
]


@pytest.mark.parametrize("secret", SECRETS)
def test_token_shapes(secret: str) -> None:
    text, count = redact(f"the key is {secret} ok")
    assert secret not in text
    assert REDACTED in text
    assert count >= 1


@pytest.mark.parametrize(
    ("text", "leak"),
    [
        ("export DB_PASSWORD=hunter2hunter2", "hunter2hunter2"),
        ('{"api_key": "abcd1234efgh"}', "abcd1234efgh"),
        ("postgres://app:pa55word@db:5432/prod", "pa55word"),
        ("curl -H 'Authorization: Bearer abcdefghijklmnopqrstuvwx'", "abcdefghijklmnopqrstuvwx"),
        ("note <private>my home address</private> end", "my home address"),
        (
            "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA\n-----END RSA PRIVATE KEY-----",
            "MIIEpAIBAAKCAQEA",
        ),
        ("client_secret: 'f00dbabe1234'", "f00dbabe1234"),
    ],
)
def test_contextual_secrets(text: str, leak: str) -> None:
    clean, count = redact(text)
    assert leak not in clean
    assert count >= 1


def test_ordinary_text_untouched() -> None:
    text = "The password reset flow uses tokens; see docs/auth.md. Run pytest -k token."
    assert redact(text) == (text, 0)


def test_counts_each_secret_once() -> None:
    assert redact("api_key=sk-proj-abcdefghijklmnopqrstuvwxyz0123456789")[1] == 1


def test_nothing_secret_reaches_storage(http: httpx.Client) -> None:
    secret = "ghp_abcdefghijklmnopqrstuvwxyz0123456789"
    agent = http.post(
        "/v1/agents/",
        json={"name": "redact", "memory_blocks": [{"label": "human", "value": f"token {secret}"}]},
    ).json()
    assert secret not in agent["blocks"][0]["value"]
    url = f"/v1/agents/{agent['id']}/archival-memory"
    stored = http.post(
        url, json={"text": f"use {secret} to push", "metadata": {"env": secret}}
    ).json()
    assert secret not in stored[0]["text"] and secret not in str(stored[0]["metadata"])
    hits = http.get(f"{url}/search", params={"query": secret, "mode": "lexical"}).json()
    assert hits["results"] == []  # not even the index holds it
    message = http.post(
        f"/v1/agents/{agent['id']}/messages/import",
        json={"messages": [{"role": "user", "content": f"my key is {secret}"}]},
    ).json()
    assert secret not in message[0]["content"]
    exported = http.get(f"/v1/agents/{agent['id']}/export").text
    assert secret not in exported
