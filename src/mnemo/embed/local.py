"""The bundled sentence-transformers models (catalog.py) on onnxruntime + tokenizers.

The sentence embedding is the attention-masked mean of the last hidden state, L2-normalised,
which reproduces sentence-transformers (tests/test_embed.py checks each model against its
reference.json).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np
import onnxruntime
from tokenizers import Tokenizer

from mnemo.embed.base import normalise
from mnemo.embed.catalog import LocalModel

BATCH_SIZE = 32
# Tokens in one run of the model: what bounds its memory (attention grows with batch × length²).
BATCH_TOKENS = 2048


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
        for chunk in _batches(order, [len(e.ids) for e in encodings]):
            width = len(encodings[chunk[-1]].ids)
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


def _batches(order: list[int], lengths: list[int]) -> Iterator[list[int]]:
    """Consecutive runs of `order` (indices sorted by length) of at most BATCH_SIZE texts and,
    padded to the longest, at most BATCH_TOKENS tokens (always at least one text)."""
    chunk: list[int] = []
    for i in order:
        if chunk and (len(chunk) == BATCH_SIZE or (len(chunk) + 1) * lengths[i] > BATCH_TOKENS):
            yield chunk
            chunk = []
        chunk.append(i)
    if chunk:
        yield chunk
