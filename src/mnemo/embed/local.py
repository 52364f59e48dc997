"""The bundled sentence-transformers models (catalog.py) on onnxruntime + tokenizers.

The sentence embedding is the attention-masked mean of the last hidden state, L2-normalised,
which reproduces sentence-transformers (tests/test_embed.py checks each model against its
reference.json).
"""

from __future__ import annotations

import os

import numpy as np
import onnxruntime
from tokenizers import Tokenizer

from mnemo.embed.base import normalise
from mnemo.embed.catalog import LocalModel

BATCH_SIZE = 32


class LocalEmbedder:
    def __init__(self, model: LocalModel, threads: int = 0) -> None:
        self.handle = model.handle
        self.dim = model.dim
        self._model = model
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads or min(4, os.cpu_count() or 1)
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        self._session = onnxruntime.InferenceSession(
            str(model.path / "model.onnx"), options, providers=["CPUExecutionProvider"]
        )
        self._tokenizer = Tokenizer.from_file(str(model.path / "tokenizer.json"))
        self._tokenizer.enable_truncation(model.max_tokens)
        self._tokenizer.no_padding()

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        encodings = self._tokenizer.encode_batch(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        # Sorting by length keeps padding, and so wasted work, small inside each batch.
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        for start in range(0, len(order), BATCH_SIZE):
            chunk = order[start : start + BATCH_SIZE]
            width = max(len(encodings[i].ids) for i in chunk)
            ids = np.full((len(chunk), width), self._model.pad_id, dtype=np.int64)
            mask = np.zeros((len(chunk), width), dtype=np.int64)
            for row, i in enumerate(chunk):
                tokens = encodings[i].ids
                ids[row, : len(tokens)] = tokens
                mask[row, : len(tokens)] = 1
            feed = {"input_ids": ids, "attention_mask": mask}
            if self._model.token_type_ids:
                feed["token_type_ids"] = np.zeros_like(ids)
            (hidden,) = self._session.run(None, feed)
            weights = mask[:, :, None].astype(np.float32)
            pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
            out[chunk] = pooled
        return normalise(out)
