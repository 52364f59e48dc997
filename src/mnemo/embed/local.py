"""The bundled sentence-transformers models (catalog.py) on onnxruntime + tokenizers.

The sentence embedding is the attention-masked mean of the last hidden state, L2-normalised,
which reproduces sentence-transformers (tests/test_embed.py checks each model against its
reference.json).

A query longer than the model's `query_tokens` is embedded from its first and its last
tokens, half the window each: both models were trained on 128 tokens, a long prompt's
question is at one end or the other (an instruction before a paste, or after it), and the
model's time grows with every token (docs/search.md, "Long queries").
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
        # Queries are cut to their two ends after tokenizing, so they are tokenized whole.
        self._query_tokenizer = Tokenizer.from_file(str(model.path / "tokenizer.json"))
        self._query_tokenizer.no_truncation()
        self._query_tokenizer.no_padding()

    def embed(self, texts: list[str]) -> np.ndarray:
        return self._run([e.ids for e in self._tokenizer.encode_batch(texts)])

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        encodings = self._query_tokenizer.encode_batch(texts)
        return self._run([ends(e.ids, self._model.query_tokens) for e in encodings])

    def _run(self, token_ids: list[list[int]]) -> np.ndarray:
        out = np.zeros((len(token_ids), self.dim), dtype=np.float32)
        if not token_ids:
            return out
        # Sorting by length keeps padding, and so wasted work, small inside each batch.
        order = sorted(range(len(token_ids)), key=lambda i: len(token_ids[i]))
        for chunk in _batches(order, [len(t) for t in token_ids]):
            width = len(token_ids[chunk[-1]])
            ids = np.full((len(chunk), width), self._model.pad_id, dtype=np.int64)
            mask = np.zeros((len(chunk), width), dtype=np.int64)
            for row, i in enumerate(chunk):
                tokens = token_ids[i]
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


def ends(ids: list[int], window: int) -> list[int]:
    """`ids` (special tokens at both ends) cut to `window` tokens: the first special token and
    the tokens after it, then the last tokens and the closing special token."""
    if len(ids) <= window:
        return ids
    head = window // 2
    return ids[:head] + ids[len(ids) - (window - head) :]


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
