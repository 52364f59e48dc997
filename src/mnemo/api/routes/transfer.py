"""Export and import of Agent Files (complete backups: blocks, passages, messages)."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import Depends, File, Form, UploadFile
from fastapi.responses import Response

from mnemo.api.deps import AgentId, get_service
from mnemo.api.routing import SlashTolerantRouter
from mnemo.errors import InvalidInput
from mnemo.service import MemoryService

router = SlashTolerantRouter()
Service = Annotated[MemoryService, Depends(get_service)]


@router.get("/v1/agents/{agent_id}/export")
def export_agent(
    agent_id: AgentId,
    service: Service,
    scrub_messages: bool = False,
    use_legacy_format: bool = False,
) -> Response:
    if use_legacy_format:
        raise InvalidInput("use_legacy_format: the legacy v1 agent file format is not supported")
    document = service.export_agent(agent_id, include_messages=not scrub_messages)
    return Response(json.dumps(document, indent=2), media_type="application/json")


@router.post("/v1/agents/import")
async def import_agent(
    service: Service,
    file: Annotated[UploadFile, File()],
    name: Annotated[str | None, Form()] = None,
    override_name: Annotated[str | None, Form()] = None,
    append_copy_suffix: Annotated[bool, Form()] = True,
    strip_messages: Annotated[bool, Form()] = False,
    embedding: Annotated[str | None, Form()] = None,
    override_embedding_handle: Annotated[str | None, Form()] = None,
) -> dict[str, list[str]]:
    data = await file.read()
    from anyio import to_thread

    agent_ids = await to_thread.run_sync(
        lambda: service.import_agent_file(
            data,
            name=override_name or name,
            append_copy_suffix=append_copy_suffix,
            strip_messages=strip_messages,
            embedding=override_embedding_handle or embedding,
        )
    )
    return {"agent_ids": agent_ids}
