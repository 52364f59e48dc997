"""GitHub Actions events into records: `deployment_status` → deployment, `workflow_run` and
`check_run` → ci_run. The payload is read from `GITHUB_EVENT_PATH`, its name from
`GITHUB_EVENT_NAME`, exactly as a workflow step sees them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from mnemo.pipeline.records import InvalidRecord, Record, build, read_json

SUPPORTED = ("deployment_status", "workflow_run", "check_run")
PENDING = {"pending", "queued", "in_progress", "waiting", "requested"}


def load(event_name: str | None, event_path: str | None) -> dict[str, Any]:
    if not event_name:
        raise InvalidRecord("GITHUB_EVENT_NAME is not set (or pass --event NAME)")
    if event_name not in SUPPORTED:
        raise InvalidRecord(
            f"event {event_name!r} is not recorded; supported: {', '.join(SUPPORTED)}"
        )
    if not event_path:
        raise InvalidRecord("GITHUB_EVENT_PATH is not set (or pass --payload FILE)")
    payload = read_json(event_path)
    if not isinstance(payload, dict):
        raise InvalidRecord(f"{event_path}: the payload must be a JSON object")
    return payload


def record(event_name: str, payload: dict[str, Any]) -> Record | None:
    """The record for this event, or None when the event is not an outcome yet (pending)."""
    if event_name == "deployment_status":
        return _deployment(payload)
    if event_name == "workflow_run":
        return _workflow_run(payload)
    return _check_run(payload)


def _need(payload: dict[str, Any], *path: str) -> Any:
    value: Any = payload
    for key in path:
        if not isinstance(value, dict) or key not in value:
            raise InvalidRecord(f"payload has no {'.'.join(path)}")
        value = value[key]
    return value


def _seconds(start: Any, end: Any) -> float | None:
    try:
        began = datetime.fromisoformat(str(start).replace("Z", "+00:00"))
        ended = datetime.fromisoformat(str(end).replace("Z", "+00:00"))
    except ValueError:
        return None
    return max(0.0, (ended - began).total_seconds())


def _deployment(payload: dict[str, Any]) -> Record | None:
    status = _need(payload, "deployment_status")
    deployment = _need(payload, "deployment")
    state = str(_need(payload, "deployment_status", "state"))
    if state in PENDING:
        return None
    sha = str(deployment.get("sha") or "")
    result = build(
        "deployment",
        {
            "version": deployment.get("ref") or sha[:12] or str(deployment.get("id")),
            "environment": status.get("environment") or deployment.get("environment"),
            "status": state,
            "duration": _seconds(deployment.get("created_at"), status.get("created_at")),
            "commit": sha or None,
            "issues": status.get("description") or None,
            "url": status.get("target_url") or status.get("log_url") or None,
        },
        source="github",
    )
    result.key = f"deployment:{deployment.get('id')}:{state}"
    return result


def _completed(payload: dict[str, Any], name: str) -> dict[str, Any] | None:
    """The run or check object once it has finished with a conclusion; None before."""
    item = _need(payload, name)
    if payload.get("action") != "completed" or not item.get("conclusion"):
        return None
    return item


def _ci_run(fields: dict[str, Any], key: str) -> Record:
    result = build("ci-run", fields, source="github")
    result.key = key
    return result


def _workflow_run(payload: dict[str, Any]) -> Record | None:
    run = _completed(payload, "workflow_run")
    if run is None:
        return None
    return _ci_run(
        {
            "workflow": run.get("name") or str(run.get("workflow_id")),
            "conclusion": run["conclusion"],
            "branch": run.get("head_branch"),
            "commit": run.get("head_sha"),
            "duration": _seconds(run.get("run_started_at"), run.get("updated_at")),
            "url": run.get("html_url"),
            "event": run.get("event"),
        },
        f"workflow_run:{run.get('id')}:{run.get('run_attempt', 1)}",
    )


def _check_run(payload: dict[str, Any]) -> Record | None:
    check = _completed(payload, "check_run")
    if check is None:
        return None
    suite = check.get("check_suite") or {}
    return _ci_run(
        {
            "workflow": check.get("name") or "check",
            "conclusion": check["conclusion"],
            "branch": suite.get("head_branch"),
            "commit": check.get("head_sha"),
            "duration": _seconds(check.get("started_at"), check.get("completed_at")),
            "url": check.get("html_url") or check.get("details_url"),
            "event": "check_run",
        },
        f"check_run:{check.get('id')}",
    )
