"""Rendering memory into the context Claude Code injects, within a hard character budget."""

from __future__ import annotations

TYPE_CHECKING = False  # typing costs a hook ~4 ms to import; annotations only
if TYPE_CHECKING:
    from typing import Any


# Claude Code replaces any hook output over 10,000 characters with a file path and a preview.
SAFE_LIMIT = 9_500


class Budget:
    """Collects lines until the character budget is spent; items are cut, never the frame."""

    def __init__(self, limit: int) -> None:
        self.limit = min(limit, SAFE_LIMIT)
        self.lines: list[str] = []
        self.used = 0

    @property
    def left(self) -> int:
        return self.limit - self.used

    def add(self, text: str, min_chars: int = 40) -> bool:
        if not text:
            return True
        room = self.left - 1
        if room < min(min_chars, len(text)):
            return False
        if len(text) > room:
            text = text[: room - 1].rstrip() + "…"
        self.lines.append(text)
        self.used += len(text) + 1
        return True

    def section(self, header: str, items: list[tuple[str, str]], min_chars: int = 40) -> list[str]:
        """A header and as many (id, line) items as fit; no header without an item. Returns
        the ids of the items added."""
        mark = (len(self.lines), self.used)
        if not self.add(header):
            return []
        added = [item_id for item_id, line in items if self.add(line, min_chars)]
        if not added:
            del self.lines[mark[0] :]
            self.used = mark[1]
        return added

    def text(self) -> str:
        return "\n".join(self.lines)


def passage_line(result: dict[str, Any]) -> str:
    metadata = result.get("metadata") or {}
    kind = metadata.get("type") or "memory"
    when = str(result.get("timestamp") or "")[:10]
    content = " ".join(str(result.get("content") or "").split())
    return f"- [{kind}, {when}] {content}"


def session_context(
    project: str,
    blocks: list[dict[str, Any]],
    summaries: list[dict[str, Any]],
    relevant: list[dict[str, Any]],
    limit: int,
) -> tuple[str, list[str]]:
    """The session-start context and the passage ids it contains."""
    budget = Budget(limit)
    shown: list[str] = []
    budget.add(f"Memory from earlier Claude Code sessions in {project} (mnemo).")
    order = {"human": 0, "persona": 1, "project_context": 2, "learnings": 3}
    for block in sorted(blocks, key=lambda b: order.get(b.get("label", ""), 9)):
        value = str(block.get("value") or "").strip()
        if value:
            budget.add(f"## {block.get('label')}\n{value}", min_chars=80)
    sessions = [
        (
            item["id"],
            f"- {str(item.get('created_at') or item.get('timestamp'))[:10]}: "
            + " ".join(str(item.get("text") or item.get("content") or "").split()),
        )
        for item in summaries
    ]
    shown += budget.section("## Recent sessions", sessions, min_chars=120)
    related = [(r["id"], passage_line(r)) for r in relevant if r["id"] not in shown]
    shown += budget.section("## Related memories", related)
    return budget.text(), shown


def prompt_context(results: list[dict[str, Any]], limit: int) -> tuple[str, list[str]]:
    budget = Budget(limit)
    shown: list[str] = []
    budget.add("Possibly relevant memories from earlier sessions (mnemo):")
    for result in results:
        if budget.add(passage_line(result)):
            shown.append(result["id"])
    return (budget.text(), shown) if shown else ("", [])
