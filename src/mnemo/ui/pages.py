"""The viewer's routes: projects, a project's blocks and passages, search, the session timeline,
shared blocks, and the forms that fix memory. Each GET page has a `.json` twin; each form
posts back to the viewer, which checks its CSRF token and then calls the service, so the API's
rules (redaction, limits, validation) hold here too."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import FileResponse, RedirectResponse, Response

from mnemo.api.deps import get_service, loose_match, parse_bound
from mnemo.api.serialize import block_json, message_json, passage_json
from mnemo.errors import Conflict, InvalidInput, LimitExceeded, MnemoError, NotFound
from mnemo.models import Agent, Block, Passage
from mnemo.remote.queries import SESSION_SUMMARY
from mnemo.service import SEARCH_MODES, MemoryService, block_version
from mnemo.store.base import AgentFilter, BlockFilter, MessageFilter, Page, PassageFilter
from mnemo.text import analyze
from mnemo.ui import access
from mnemo.ui.render import data, page

router = APIRouter(include_in_schema=False)
Service = Annotated[MemoryService, Depends(get_service)]
STATIC = Path(__file__).parent / "static"
PAGE_SIZE = 50


class SignIn(Exception):
    """The viewer needs the API key first."""


def viewer(request: Request) -> None:
    """Who may look: with an API key, whoever signed in with it; without, this machine."""
    api_key = request.app.state.settings.api_key
    if api_key:
        if not access.signed_in(request, api_key):
            raise SignIn
    else:
        access.check_loopback(request)


Viewer = Annotated[None, Depends(viewer)]
Field = Annotated[str, Form()]  # a form field; forms are parsed before the handler's thread


def install(app: Any) -> None:
    """Mount the viewer on `app`, with its own answers for who may not see it."""
    app.include_router(router)

    async def sign_in(request: Request, _exc: Exception) -> Response:
        if request.url.path.endswith(".json") or request.method != "GET":
            return data({"detail": "Sign in to the viewer with the server's API key"}, 401)
        target = quote(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
        return RedirectResponse(f"/ui/login?next={target}", status_code=303)

    async def denied(request: Request, exc: Exception) -> Response:
        if request.url.path.endswith(".json"):
            return data({"detail": str(exc)}, 403)
        return page(request, "error.html", {"status": 403, "message": str(exc)}, 403)

    api_error = app.exception_handlers[MnemoError]

    async def error(request: Request, exc: Exception) -> Response:
        """The API answers JSON; a viewer page answers with a page saying what went wrong."""
        path = request.url.path
        if not path.startswith("/ui/") or path.endswith(".json") or not isinstance(exc, MnemoError):
            return await api_error(request, exc)
        context = {"status": exc.status_code, "message": exc.message}
        return page(request, "error.html", context, exc.status_code)

    app.add_exception_handler(SignIn, sign_in)
    app.add_exception_handler(access.ViewerDenied, denied)
    app.add_exception_handler(MnemoError, error)


def checked_form(request: Request, token: str) -> None:
    """Refuse a write whose form did not come from one of the viewer's own pages."""
    if not access.csrf_ok(request, token):
        raise access.ViewerDenied(
            "Refused: this form did not come from the viewer (missing or wrong CSRF token). "
            "Reload the page and try again."
        )


def twin(request: Request, html: str, payload: dict[str, Any], json_view: bool) -> Response:
    return data(payload) if json_view else page(request, html, payload)


# ---------------------------------------------------------------------- sign in


@router.get("/ui")
def ui_root() -> Response:
    return RedirectResponse("/ui/", status_code=308)


@router.get("/ui/static/{name}")
def static_file(name: str) -> Response:
    path = STATIC / name
    if "/" in name or not path.is_file():
        raise NotFound(f"No static file {name!r}")
    return FileResponse(path, headers={"Cache-Control": "max-age=3600"})


@router.get("/ui/login")
def login_page(request: Request, next: str = "/ui/") -> Response:
    if not request.app.state.settings.api_key:
        return RedirectResponse("/ui/", status_code=303)
    return page(request, "login.html", {"next": _local(next), "error": None})


@router.post("/ui/login")
def login(
    request: Request, csrf: Field = "", api_key: Field = "", next: Field = "/ui/"
) -> Response:
    checked_form(request, csrf)
    offered = api_key
    api_key = request.app.state.settings.api_key
    target = _local(next)
    if not api_key or not access.key_matches(api_key, offered):
        context = {"next": target, "error": "That is not this server's API key."}
        return page(request, "login.html", context, 401)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        access.SESSION_COOKIE,
        access.session_value(api_key),
        httponly=True,
        samesite="strict",
        secure=access.secure(request),
        path="/ui",
    )
    return response


@router.post("/ui/logout")
def logout(request: Request, csrf: Field = "") -> Response:
    checked_form(request, csrf)
    response = RedirectResponse("/ui/login", status_code=303)
    response.delete_cookie(access.SESSION_COOKIE, path="/ui")
    return response


# ---------------------------------------------------------------------- projects


@router.get("/ui/")
@router.get("/ui/index.json")
def projects(
    request: Request, service: Service, _: Viewer, q: str = "", after: str | None = None
) -> Response:
    agents = service.list_agents(
        AgentFilter(query_text=q or None), Page(limit=PAGE_SIZE + 1, after=after, ascending=True)
    )
    rows = [_project_summary(service, agent) for agent in agents[:PAGE_SIZE]]
    more = agents[PAGE_SIZE - 1].id if len(agents) > PAGE_SIZE else None
    payload = {"query": q, "projects": rows, "next": _query(q=q, after=more) if more else None}
    return twin(request, "projects.html", payload, request.url.path.endswith(".json"))


def _project_summary(service: MemoryService, agent: Agent) -> dict[str, Any]:
    last = _sessions(service, agent.id, Page(limit=1))
    passages = service.store.count_passages(agent.id)
    blocks = service.store.agent_blocks(agent.id)
    return {
        "id": agent.id,
        "name": agent.name,
        "project": agent.metadata.get("mnemo_project") or "",
        "passages": passages,
        "messages": service.store.count_messages(agent.id),
        "blocks": len(blocks),
        "size_chars": _size_estimate(service, agent.id, passages)
        + sum(len(b.value) for b in blocks),
        "last_session": last[0].created_at.isoformat() if last else None,
        "created_at": agent.created_at.isoformat(),
    }


SIZE_SAMPLE = 20


def _size_estimate(service: MemoryService, agent_id: str, passages: int) -> int:
    """About how many characters the project's memories hold: their count times the mean
    length of the newest SIZE_SAMPLE (an exact sum reads every passage: 93 ms at 100,000)."""
    if passages == 0:
        return 0
    newest = service.list_passages(
        PassageFilter(agent_ids=[agent_id]), Page(limit=min(SIZE_SAMPLE, passages))
    )
    if len(newest) == passages:
        return sum(len(p.text) for p in newest)
    return round(passages * sum(len(p.text) for p in newest) / max(1, len(newest)))


def _sessions(service: MemoryService, agent_id: str, page_: Page) -> list[Passage]:
    filters = PassageFilter(agent_ids=[agent_id], metadata={"type": SESSION_SUMMARY})
    return service.list_passages(filters, page_)


# ---------------------------------------------------------------------- one project


@router.get("/ui/agents/{agent_id}")
@router.get("/ui/agents/{agent_id}.json")
def project(
    request: Request, agent_id: str, service: Service, _: Viewer, after: str | None = None
) -> Response:
    return _project_page(request, service, _agent_id(agent_id), after)


def _project_page(
    request: Request,
    service: MemoryService,
    agent_id: str,
    after: str | None = None,
    problem: dict[str, Any] | None = None,
    status_code: int = 200,
) -> Response:
    agent = service.get_agent(agent_id)
    passages = service.list_passages(
        PassageFilter(agent_ids=[agent_id]), Page(limit=PAGE_SIZE + 1, after=after)
    )
    more = passages[PAGE_SIZE - 1].id if len(passages) > PAGE_SIZE else None
    payload = {
        "agent": {"id": agent.id, "name": agent.name, **_project_summary(service, agent)},
        "blocks": [
            _block_view(service, agent.id, block) for block in service.agent_blocks(agent.id)
        ],
        "passages": [passage_json(p) for p in passages[:PAGE_SIZE]],
        "next": _query(after=more) if more else None,
        "problem": problem,
    }
    if request.url.path.endswith(".json"):
        return data(payload, status_code)
    return page(request, "project.html", payload, status_code)


def _block_view(service: MemoryService, agent_id: str, block: Block) -> dict[str, Any]:
    sharing = [a for a in service.block_agents(block.id, Page(limit=100)) if a.id != agent_id]
    return {
        **block_json(block),
        "version": block_version(block),
        "shared_with": [{"id": a.id, "name": a.name} for a in sharing],
    }


@router.post("/ui/agents/{agent_id}/blocks/{label}")
def edit_block(
    request: Request,
    agent_id: str,
    label: str,
    service: Service,
    _: Viewer,
    csrf: Field = "",
    value: Field = "",
    version: Field = "",
) -> Response:
    checked_form(request, csrf)
    agent_id, value = _agent_id(agent_id), value.replace("\r\n", "\n")
    block = service.get_agent_block(agent_id, label)
    return _block_write(
        request,
        service,
        agent_id,
        label,
        lambda: service.update_block(block.id, {"value": value}, version or None),
        {"value": value},
    )


@router.post("/ui/agents/{agent_id}/blocks/{label}/append")
def append_block(
    request: Request,
    agent_id: str,
    label: str,
    service: Service,
    _: Viewer,
    csrf: Field = "",
    text: Field = "",
) -> Response:
    checked_form(request, csrf)
    agent_id, text = _agent_id(agent_id), text.replace("\r\n", "\n")
    return _block_write(
        request,
        service,
        agent_id,
        label,
        lambda: service.append_to_block(agent_id, label, text),
        {"append": text},
    )


def _block_write(
    request: Request,
    service: MemoryService,
    agent_id: str,
    label: str,
    write: Callable[[], object],
    submitted: dict[str, str],
) -> Response:
    """Do a block write, then show the block; if the service refuses it (over the limit,
    changed meanwhile), show the page again with its message and what was submitted."""
    try:
        write()
    except (LimitExceeded, Conflict, InvalidInput) as exc:
        problem = {"label": label, "message": str(exc), **submitted}
        return _project_page(request, service, agent_id, None, problem, _status(exc))
    return RedirectResponse(f"/ui/agents/{agent_id}#block-{label}", status_code=303)


@router.get("/ui/agents/{agent_id}/export")
def export(agent_id: str, service: Service, _: Viewer) -> Response:
    agent = service.get_agent(_agent_id(agent_id))
    document = service.export_agent(agent.id)
    return Response(
        json.dumps(document, indent=2),
        media_type="application/json",
        headers={
            **access.SECURITY_HEADERS,
            "Content-Disposition": f'attachment; filename="{agent.name}.af"',
        },
    )


# ---------------------------------------------------------------------- search


@router.get("/ui/agents/{agent_id}/search")
@router.get("/ui/agents/{agent_id}/search.json")
def search(request: Request, agent_id: str, service: Service, _: Viewer) -> Response:
    agent = service.get_agent(_agent_id(agent_id))
    form = {k: request.query_params.get(k, "") for k in SEARCH_FIELDS}
    form["mode"] = form["mode"] or "hybrid"
    results: list[dict[str, Any]] = []
    problem = None
    terms: list[str] = []
    if form["q"].strip():
        try:
            top_k = int(form["top_k"] or 20)
            if form["mode"] == CONVERSATIONS:
                results = _said(service, agent.id, form, top_k)
            else:
                filters = _search_filters(agent.id, form)
                hits = service.search_passages(
                    form["q"], filters, top_k, form["mode"], agent.embedding
                )
                results = [
                    {**passage_json(h.passage), "score": h.score, "similarity": h.similarity}
                    for h in hits
                ]
        except (InvalidInput, ValueError) as exc:
            problem = str(exc)
        else:
            terms = sorted(set(analyze(form["q"])))
            for result in results:
                words = set(analyze(result.get("text") or result.get("content") or ""))
                result["matched_terms"] = sorted(words & set(terms))
    payload = {
        "agent": {"id": agent.id, "name": agent.name},
        "form": form,
        "modes": (*SEARCH_MODES, CONVERSATIONS),
        "results": results,
        "terms": terms,
        "problem": problem,
    }
    if request.url.path.endswith(".json"):
        return data(payload, 400 if problem else 200)
    return page(request, "search.html", payload, 400 if problem else 200)


SEARCH_FIELDS = ("q", "mode", "type", "tags", "file", "since", "until", "meta", "top_k")
CONVERSATIONS = "conversations"  # the search page's mode for what was said in past sessions
MEMORY_ONLY_FIELDS = ("type", "tags", "file", "meta")


def _said(
    service: MemoryService, agent_id: str, form: dict[str, str], top_k: int
) -> list[dict[str, Any]]:
    """The recall messages matching the query, with the dates of the form."""
    given = [name for name in MEMORY_ONLY_FIELDS if form[name].strip()]
    if given:
        raise InvalidInput(
            f"{', '.join(given)}: filters of memories; conversations are filtered by date only"
        )
    filters = MessageFilter(
        agent_ids=[agent_id],
        start=parse_bound(form["since"].strip() or None, "since", end=False),
        end=parse_bound(form["until"].strip() or None, "until", end=True),
    )
    return [
        {**message_json(message), "score": score}
        for message, score in service.search_messages(form["q"], filters, top_k)
    ]


def _search_filters(agent_id: str, form: dict[str, str]) -> PassageFilter:
    """The same filters as the API's: type and metadata as `key=value` lines, tags (any of,
    comma-separated), a file (edits to it or failures in it), a date range."""
    metadata: dict[str, Any] = {}
    for line in form["meta"].splitlines():
        if not line.strip():
            continue
        key, sep, raw = line.partition("=")
        if not sep or not key.strip():
            raise InvalidInput(f"metadata filter {line.strip()!r}: write key=value, one a line")
        metadata[key.strip()] = loose_match(raw.strip())
    if form["type"].strip():
        metadata["type"] = form["type"].strip()
    if form["file"].strip():
        metadata["path"] = form["file"].strip()
    return PassageFilter(
        agent_ids=[agent_id],
        tags=[t.strip() for t in form["tags"].split(",") if t.strip()],
        start=parse_bound(form["since"].strip() or None, "since", end=False),
        end=parse_bound(form["until"].strip() or None, "until", end=True),
        metadata=metadata,
    )


# ---------------------------------------------------------------------- sessions


@router.get("/ui/agents/{agent_id}/timeline")
@router.get("/ui/agents/{agent_id}/timeline.json")
def timeline(
    request: Request, agent_id: str, service: Service, _: Viewer, after: str | None = None
) -> Response:
    agent = service.get_agent(_agent_id(agent_id))
    sessions = _sessions(service, agent.id, Page(limit=PAGE_SIZE + 1, after=after))
    more = sessions[PAGE_SIZE - 1].id if len(sessions) > PAGE_SIZE else None
    payload = {
        "agent": {"id": agent.id, "name": agent.name},
        "sessions": [passage_json(s) for s in sessions[:PAGE_SIZE]],
        "next": _query(after=more) if more else None,
    }
    return twin(request, "timeline.html", payload, request.url.path.endswith(".json"))


@router.get("/ui/agents/{agent_id}/sessions/{session_id}")
@router.get("/ui/agents/{agent_id}/sessions/{session_id}.json")
def session(
    request: Request,
    agent_id: str,
    session_id: str,
    service: Service,
    _: Viewer,
    after: str | None = None,
) -> Response:
    agent = service.get_agent(_agent_id(agent_id))
    session_id = session_id.removesuffix(".json")
    messages = service.list_messages(
        MessageFilter(agent_ids=[agent.id], conversation_id=session_id),
        Page(limit=PAGE_SIZE * 4 + 1, after=after, ascending=True),
    )
    more = messages[PAGE_SIZE * 4 - 1].id if len(messages) > PAGE_SIZE * 4 else None
    memories = service.list_passages(
        PassageFilter(agent_ids=[agent.id], metadata={"session_id": session_id}),
        Page(limit=200, ascending=True),
    )
    payload = {
        "agent": {"id": agent.id, "name": agent.name},
        "session_id": session_id,
        "messages": [message_json(m) for m in messages[: PAGE_SIZE * 4]],
        "passages": [passage_json(p) for p in memories],
        "next": _query(after=more) if more else None,
    }
    return twin(request, "session.html", payload, request.url.path.endswith(".json"))


@router.post("/ui/agents/{agent_id}/sessions/{session_id}/forget")
def forget_session(
    request: Request, agent_id: str, session_id: str, service: Service, _: Viewer, csrf: Field = ""
) -> Response:
    checked_form(request, csrf)
    agent_id = _agent_id(agent_id)
    passages, messages = service.forget_session(agent_id, session_id)
    return RedirectResponse(
        f"/ui/agents/{agent_id}/timeline?{urlencode({'forgot': f'{passages},{messages}'})}",
        status_code=303,
    )


# ---------------------------------------------------------------------- passages


@router.get("/ui/agents/{agent_id}/passages/{passage_id}")
@router.get("/ui/agents/{agent_id}/passages/{passage_id}.json")
def passage(
    request: Request, agent_id: str, passage_id: str, service: Service, _: Viewer
) -> Response:
    return _passage_page(request, service, _agent_id(agent_id), passage_id.removesuffix(".json"))


def _passage_page(
    request: Request,
    service: MemoryService,
    agent_id: str,
    passage_id: str,
    problem: dict[str, Any] | None = None,
    status_code: int = 200,
) -> Response:
    agent = service.get_agent(agent_id)
    found = service.get_passage(agent.id, passage_id)
    payload = {
        "agent": {"id": agent.id, "name": agent.name},
        "passage": passage_json(found),
        "metadata_json": json.dumps(found.metadata, indent=2, ensure_ascii=False),
        "problem": problem,
    }
    if request.url.path.endswith(".json"):
        return data(payload, status_code)
    return page(request, "passage.html", payload, status_code)


@router.post("/ui/agents/{agent_id}/passages/{passage_id}")
def edit_passage(
    request: Request,
    agent_id: str,
    passage_id: str,
    service: Service,
    _: Viewer,
    csrf: Field = "",
    text: Field = "",
    tags: Field = "",
    metadata: Field = "{}",
) -> Response:
    checked_form(request, csrf)
    agent_id = _agent_id(agent_id)
    text = text.replace("\r\n", "\n")
    tag_list = [t.strip() for t in tags.split(",") if t.strip()]
    raw_metadata = metadata
    try:
        metadata = json.loads(raw_metadata or "{}")
        if not isinstance(metadata, dict):
            raise InvalidInput("metadata: must be a JSON object")
        current = service.get_passage(agent_id, passage_id)
        removed = {key: None for key in current.metadata if key not in metadata}
        service.update_passage(agent_id, passage_id, text, tag_list, {**removed, **metadata})
    except (ValueError, MnemoError) as exc:
        if isinstance(exc, NotFound):
            raise
        problem = {"message": f"Not saved: {exc}", "text": text, "tags": ", ".join(tag_list)}
        problem["metadata"] = raw_metadata
        return _passage_page(request, service, agent_id, passage_id, problem, _status(exc))
    return RedirectResponse(f"/ui/agents/{agent_id}/passages/{passage_id}", status_code=303)


@router.post("/ui/agents/{agent_id}/passages/{passage_id}/delete")
def delete_passage(
    request: Request, agent_id: str, passage_id: str, service: Service, _: Viewer, csrf: Field = ""
) -> Response:
    checked_form(request, csrf)
    agent_id = _agent_id(agent_id)
    service.delete_passage(agent_id, passage_id)
    return RedirectResponse(
        f"/ui/agents/{agent_id}?{urlencode({'deleted': passage_id})}", status_code=303
    )


# ---------------------------------------------------------------------- team


@router.get("/ui/team")
@router.get("/ui/team.json")
def team(request: Request, service: Service, _: Viewer) -> Response:
    """Blocks that more than one project sees, with the projects that see them."""
    shared = []
    after = None
    while True:
        blocks = service.list_blocks(BlockFilter(), Page(limit=200, after=after, ascending=True))
        for block in blocks:
            users = service.block_agents(block.id, Page(limit=1000))
            if len(users) > 1 or "mnemo-team" in block.tags:
                shared.append(
                    {**block_json(block), "projects": [{"id": a.id, "name": a.name} for a in users]}
                )
        if len(blocks) < 200:
            break
        after = blocks[-1].id
    return twin(request, "team.html", {"blocks": shared}, request.url.path.endswith(".json"))


# ---------------------------------------------------------------------- helpers


def _agent_id(raw: str) -> str:
    return raw.removesuffix(".json")


def _local(target: str) -> str:
    """Only a path of this viewer may be a redirect target after signing in."""
    return target if target.startswith("/ui/") and not target.startswith("//") else "/ui/"


def _query(**params: str | None) -> str:
    return "?" + urlencode({k: v for k, v in params.items() if v})


def _status(exc: Exception) -> int:
    return exc.status_code if isinstance(exc, MnemoError) else 400
