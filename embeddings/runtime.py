"""ONNX Runtime sessions and tokenizers: loaded once per process, reused while warm."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

from embeddings.cards import ModelCard, load_card
from embeddings.pooling import l2_normalize, mean_pool, softmax


def default_threads() -> int:
    """Intra-op threads per session: 1 by default (a Lambda below 1,769 MB has one vCPU)."""
    value = os.environ.get("EMBEDDINGS_THREADS", "1")
    try:
        threads = int(value)
    except ValueError:
        raise ValueError(f"EMBEDDINGS_THREADS must be a whole number, got {value!r}") from None
    if threads < 0:
        raise ValueError(f"EMBEDDINGS_THREADS must be >= 0, got {threads}")
    return threads


def load_tokenizer(card: ModelCard) -> Tokenizer:
    tokenizer = Tokenizer.from_file(str(card.tokenizer_path))
    # The upstream tokenizer.json pads every input to 128 tokens: 5x slower for a short question.
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=card.max_tokens)
    return tokenizer


def load_session(card: ModelCard, threads: int) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    return ort.InferenceSession(str(card.model_path), options, providers=["CPUExecutionProvider"])


@dataclass
class Timings:
    tokenize_ms: float = 0.0
    infer_ms: float = 0.0

    def as_dict(self, total_ms: float) -> dict[str, float]:
        return {"tokenize": round(self.tokenize_ms, 3), "infer": round(self.infer_ms, 3), "total": round(total_ms, 3)}


class Model:
    """One ONNX model and its tokenizer. Thread-safe: ONNX Runtime sessions allow concurrent ``run``."""

    def __init__(self, card: ModelCard, threads: int | None = None) -> None:
        self.card = card
        self.threads = default_threads() if threads is None else threads
        self.tokenizer = load_tokenizer(card)
        self.session = load_session(card, self.threads)
        self.input_names = {i.name for i in self.session.get_inputs()}

    def _run(self, text: str, timings: Timings, pair: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        start = time.perf_counter()
        encoding = self.tokenizer.encode(text) if pair is None else self.tokenizer.encode(text, pair)
        ids = np.array([encoding.ids], dtype=np.int64)
        mask = np.array([encoding.attention_mask], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self.input_names:
            feeds["token_type_ids"] = np.array([encoding.type_ids], dtype=np.int64)
        tokenized = time.perf_counter()
        output = self.session.run(None, feeds)[0]
        timings.tokenize_ms += (tokenized - start) * 1000
        timings.infer_ms += (time.perf_counter() - tokenized) * 1000
        return output, mask

    def _forward(self, texts: list[str], timings: Timings) -> list[tuple[np.ndarray, np.ndarray]]:
        """One session run per text, never a padded batch.

        Dynamic int8 quantisation scales activations by the range of the whole input tensor, so in
        a batch one text's vector would depend on its neighbours (cosine to its own single-text
        vector fell to 0.984, measured). Per text, results are reproducible whatever the batch.
        """
        return [self._run(text, timings) for text in texts]

    def embed(self, texts: list[str], timings: Timings | None = None) -> np.ndarray:
        """L2-normalised float32 sentence vectors, [len(texts), dim]."""
        pooled = [mean_pool(hidden, mask) for hidden, mask in self._forward(texts, timings or Timings())]
        return l2_normalize(np.concatenate(pooled))

    def classify(self, texts: list[str], timings: Timings | None = None) -> np.ndarray:
        """Class probabilities, [len(texts), len(labels)], in the card's label order."""
        logits = np.concatenate([out for out, _ in self._forward(texts, timings or Timings())])
        return softmax(logits.astype(np.float32))

    def verify(self, pairs: list[tuple[str, str]], timings: Timings | None = None) -> np.ndarray:
        """A pair reader's logit that each two questions are the same question, [len(pairs)].

        One session run per pair, for the same reason as ``_forward``.
        """
        timings = timings or Timings()
        return np.array([float(self._run(a, timings, pair=b)[0].reshape(-1)[0]) for a, b in pairs], dtype=np.float32)


_models: dict[tuple[str, int], Model] = {}
_lock = threading.Lock()


def get_model(name: str, threads: int | None = None) -> Model:
    """The process-wide instance of a model, loaded on first use."""
    threads = default_threads() if threads is None else threads
    key = (name, threads)
    model = _models.get(key)
    if model is None:
        with _lock:
            model = _models.get(key)
            if model is None:
                model = _models[key] = Model(load_card(name), threads)
    return model
