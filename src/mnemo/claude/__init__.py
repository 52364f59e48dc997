"""Claude Code integration: hook programs, transcript parsing, installer, plugin assets.

Everything imported on a hook's path uses the standard library only (tests check it): a hook
is a fresh Python process on every prompt and tool call.
"""

# Claude Code's file-editing tools and the operation each performs.
EDIT_TOOLS = {
    "Edit": "edit",
    "MultiEdit": "edit",
    "Write": "write",
    "NotebookEdit": "notebook_edit",
}
