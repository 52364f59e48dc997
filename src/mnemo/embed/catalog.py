"""The embedding models that ship inside the package: offline, no torch, no download. Each
model's files are produced once by its export script, which records their provenance."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

PACKAGE_DIR = Path(__file__).parent


@dataclass(frozen=True)
class LocalModel:
    handle: str
    directory: str  # under mnemo/embed/
    dim: int
    max_tokens: int  # sentence-transformers' max_seq_length
    query_tokens: int  # a longer query is embedded from its two ends (local.py)
    pad_id: int
    token_type_ids: bool  # BERT graphs take them; MPNet's does not
    export_script: str

    @property
    def path(self) -> Path:
        return PACKAGE_DIR / self.directory


MPNET = LocalModel(
    handle="mnemo/all-mpnet-base-v2",
    directory="mpnet",
    dim=768,
    max_tokens=384,
    query_tokens=128,
    pad_id=1,
    token_type_ids=False,
    export_script="scripts/export_mpnet_onnx.py",
)
MINILM = LocalModel(
    handle="mnemo/all-MiniLM-L6-v2",
    directory="minilm",
    dim=384,
    max_tokens=256,
    query_tokens=128,
    pad_id=0,
    token_type_ids=True,
    export_script="scripts/export_minilm_onnx.py",
)
LOCAL_MODELS = {model.handle: model for model in (MPNET, MINILM)}
