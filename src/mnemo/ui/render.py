"""Templates and the filters they use. Jinja2 escapes everything by default; the filters here
return Markup only around text they escaped themselves."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.templating import Jinja2Templates
from markupsafe import Markup, escape

from mnemo import __version__
from mnemo.text import analyze
from mnemo.ui import access

TEMPLATES = Jinja2Templates(directory=Path(__file__).parent / "templates")
_WORD = re.compile(r"\w+", re.UNICODE)
# Control characters (ANSI escapes among them) shown as visible symbols, newlines and tabs kept.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def visible(text: str | None) -> str:
    return _CONTROL.sub(lambda m: chr(0x2400 + ord(m.group()) % 0x7F), text or "")


def highlight(text: str | None, terms: Iterable[str]) -> Markup:
    """`text` escaped, with each word whose analysed terms meet the query's in <mark>."""
    shown = visible(text)
    terms = set(terms)
    if not terms:
        return Markup(escape(shown))
    out: list[str] = []
    last = 0
    for match in _WORD.finditer(shown):
        if terms.intersection(analyze(match.group())):
            out.append(str(escape(shown[last : match.start()])))
            out.append(f"<mark>{escape(match.group())}</mark>")
            last = match.end()
    out.append(str(escape(shown[last:])))
    return Markup("".join(out))


def when(value: datetime | str | None) -> str:
    if value is None:
        return ""
    text = value.isoformat() if isinstance(value, datetime) else value
    return text[:16].replace("T", " ")


def size(chars: int) -> str:
    """A character count as a reader takes it in: 850 chars, 12 K chars, 3.4 M chars."""
    if chars < 1000:
        return f"{chars} chars"
    if chars < 1_000_000:
        return f"{chars / 1000:.0f} K chars"
    return f"{chars / 1_000_000:.1f} M chars"


def percent(used: int, limit: int) -> int:
    return min(100, round(100 * used / limit)) if limit else 0


TEMPLATES.env.filters.update(visible=visible, highlight=highlight, when=when, size=size)
TEMPLATES.env.globals.update(version=__version__, percent=percent)


def page(
    request: Request, template: str, context: dict[str, Any], status_code: int = 200
) -> HTMLResponse:
    """A viewer page with its security headers, and the CSRF cookie its forms echo."""
    token = access.csrf_token(request)
    response = TEMPLATES.TemplateResponse(
        request,
        template,
        {**context, "csrf": token, "csrf_field": access.CSRF_FIELD, "json_url": json_url(request)},
        status_code=status_code,
        headers=access.SECURITY_HEADERS,
    )
    if request.cookies.get(access.CSRF_COOKIE) != token:
        response.set_cookie(
            access.CSRF_COOKIE,
            token,
            httponly=True,
            samesite="strict",
            secure=access.secure(request),
            path="/ui",
        )
    return response


def json_url(request: Request) -> str:
    """The address of a page's `.json` twin."""
    path = request.url.path
    twin = f"{path}index.json" if path.endswith("/") else f"{path}.json"
    return twin + (f"?{request.url.query}" if request.url.query else "")


def data(payload: Any, status_code: int = 200) -> JSONResponse:
    """The `.json` twin of a page."""
    return JSONResponse(payload, status_code=status_code, headers=access.SECURITY_HEADERS)
