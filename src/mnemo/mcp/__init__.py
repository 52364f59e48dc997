"""MCP server: memory tools for Claude Code and any MCP client (official `mcp` SDK)."""
