"""mnemo: persistent memory for Claude Code and other agents."""

import os

# Vector search is a matrix-vector product, bound by memory, not by cores. OpenBLAS's worker
# threads busy-wait after each call and then starve onnxruntime on a small machine
# (docs/benchmarks.md). Must be set before numpy is first imported.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    # `mnemo.Client` is imported on first use: hooks import this package and must stay light.
    if name == "Client":
        from mnemo.remote.client import Client

        return Client
    if name in ("ClientError", "ApiError", "Unreachable"):
        from mnemo.remote import errors

        return getattr(errors, name)
    raise AttributeError(f"module 'mnemo' has no attribute {name!r}")
