"""Who may use the viewer, and how its writes are protected.

- Without an API key the viewer serves only clients on this machine (loopback).
- With one, the viewer asks for it once and keeps a session cookie: `<nonce>.<HMAC(key,
  nonce)>`, HttpOnly, SameSite=Strict, Secure over HTTPS. Any replica holding the same key
  verifies it; the cookie opens /ui/ only, never the REST API.
- Every form that writes carries a token equal to the `mnemo_csrf` cookie (double submit):
  a page on another site can neither read the cookie nor send it (SameSite=Strict). The
  Host and Origin checks of api/middleware.py apply as for every route.
- Every page is sent with a Content-Security-Policy that allows only this server's own
  script and style files, so nothing in stored memories can run.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets

from fastapi import Request

SESSION_COOKIE = "mnemo_session"
CSRF_COOKIE = "mnemo_csrf"
CSRF_FIELD = "csrf"
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


class ViewerDenied(Exception):
    """The client may not use the viewer; the message says why and how to fix it."""


def session_value(api_key: str) -> str:
    nonce = secrets.token_urlsafe(16)
    return f"{nonce}.{_sign(api_key, nonce)}"


def valid_session(api_key: str, value: str | None) -> bool:
    if not value or "." not in value:
        return False
    nonce, _, signature = value.partition(".")
    return hmac.compare_digest(signature, _sign(api_key, nonce))


def key_matches(api_key: str, offered: str) -> bool:
    return hmac.compare_digest(offered.strip().encode(), api_key.encode())


def signed_in(request: Request, api_key: str) -> bool:
    """A valid session cookie, or the API key as a bearer token (scripts reading `.json`)."""
    if valid_session(api_key, request.cookies.get(SESSION_COOKIE)):
        return True
    scheme, _, token = (request.headers.get("authorization") or "").partition(" ")
    return scheme.lower() == "bearer" and key_matches(api_key, token)


def check_loopback(request: Request) -> None:
    """Without an API key, only this machine may look at its memory."""
    host = request.client.host if request.client else ""
    try:
        local = ipaddress.ip_address(host).is_loopback
    except ValueError:
        local = host == "localhost"
    if not local:
        raise ViewerDenied(
            "The viewer serves only this machine while no API key is set: set api_key "
            "(MNEMO_API_KEY) on the server to open it to other machines."
        )


def csrf_token(request: Request) -> str:
    """The token the page's forms carry: the browser's cookie, or a new one to set."""
    return request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(24)


def csrf_ok(request: Request, submitted: str | None) -> bool:
    cookie = request.cookies.get(CSRF_COOKIE)
    return bool(cookie and submitted) and hmac.compare_digest(cookie, submitted or "")


def secure(request: Request) -> bool:
    """Whether the browser reached us over HTTPS (directly or through a TLS proxy)."""
    forwarded = (request.headers.get("x-forwarded-proto") or "").split(",")[0].strip()
    return request.url.scheme == "https" or forwarded == "https"


def _sign(api_key: str, nonce: str) -> str:
    return hmac.new(
        api_key.encode(), f"viewer-session:{nonce}".encode(), hashlib.sha256
    ).hexdigest()
