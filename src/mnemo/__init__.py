"""mnemo: persistent memory for Claude Code and other agents."""

__version__ = "0.1.0"
