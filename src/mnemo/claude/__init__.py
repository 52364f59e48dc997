"""Claude Code integration: hook programs, transcript parsing, installer, plugin assets.

Everything imported on a hook's path uses the standard library only (tests check it): a hook
is a fresh Python process on every prompt and tool call.
"""
