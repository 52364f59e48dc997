"""What the export scripts of the bundled models share: the ONNX export of a sentence-
transformers model's encoder, its compression, its tokenizer, and the reference vectors its
parity test reads. The compression (docs/benchmarks.md, "all-mpnet-base-v2 by default", has the
measurements that chose it):

- every weight MatMul becomes an 8-bit weight-only MatMulNBits (blocks of 128, activations
  quantised per block at run time: accuracy level 4). Per-tensor dynamic quantisation of the
  activations instead drifts (mean cosine 0.92 to fp32 for mpnet): feed-forward outputs have
  outliers.
- the token embedding table is stored in float16 and cast to float32 after the lookup.
- the weights go to two external-data files of about equal size, each under GitHub's 100 MB.

Imported by the export scripts next to it; runs in their throwaway virtualenv (torch, onnx,
onnx_ir, onnxruntime, sentence-transformers).
"""

from __future__ import annotations

import json
import shutil
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

DATA_FILES = ("model.data.1", "model.data.2")
REFERENCE_SENTENCES = [
    "The deployment failed because the database migration timed out.",
    "Use pytest -x to stop at the first failing test.",
    "Caroline went to the LGBTQ support group on Tuesday.",
    "mnemo stores archival passages with embeddings in SQLite.",
    "short",
    "Ünïcödé text, emoji 🚀 and punctuation!?",
]


def export(
    encoder: torch.nn.Module,
    inputs: list[str],
    source: Path,
    out: Path,
    model: str,
    provenance: str,
) -> None:
    """Export `encoder` (positional `inputs` -> last_hidden_state) of the sentence-transformers
    model `model` in `source` to out/, compressed, with its tokenizer and reference vectors."""
    out.mkdir(parents=True, exist_ok=True)
    dummy = torch.ones((2, 8), dtype=torch.long)
    arguments = tuple(torch.zeros_like(dummy) if n == "token_type_ids" else dummy for n in inputs)
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = Path(tmp) / "fp32.onnx"
        torch.onnx.export(
            encoder.eval(),
            arguments,
            str(fp32),
            input_names=inputs,
            output_names=["last_hidden_state"],
            dynamic_axes={
                name: {0: "batch", 1: "sequence"} for name in [*inputs, "last_hidden_state"]
            },
            opset_version=17,
            dynamo=False,
        )
        compress(fp32, out)
    shutil.copy(source / "tokenizer.json", out / "tokenizer.json")
    reference = SentenceTransformer(str(source), device="cpu")
    vectors = reference.encode(REFERENCE_SENTENCES, normalize_embeddings=True)
    (out / "reference.json").write_text(
        json.dumps(
            {
                "model": model,
                "source": provenance,
                "sentences": REFERENCE_SENTENCES,
                "vectors": [[round(float(x), 7) for x in v] for v in vectors],
            },
            indent=1,
        )
    )
    print(f"wrote {out}")


def compress(fp32_graph: Path, out: Path) -> None:
    """Write the compressed graph as out/model.onnx and its weights as out/DATA_FILES."""
    model = quantise_matmuls(onnx.load(str(fp32_graph)))
    half_precision_embeddings(model)
    save_split(model, out)


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
