"""The Sentence-BERT model the training steps share: load a base or a folder, save, encode, the dev
figures, the length-bucketed batches and one optimiser step. torch and sentence-transformers are
imported inside the functions (they are in the training environment only).
"""

from __future__ import annotations

import json
import logging
import os
import random
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from training.corpora import ROOT, Pair
from training.metrics import best_thresholds, spearman

BASE_TOKENIZERS = ROOT / "embeddings" / "models"
# Tokenizer settings (special tokens, lower-casing) shared by both MiniLM bases: same uncased vocab.
TOKENIZER_EXTRAS = ("tokenizer_config.json", "special_tokens_map.json", "vocab.txt")
MAX_SEQ_LENGTH = 128  # STSb and event questions are far shorter
EVAL_BATCH = 64
THREADS = 2


def log(out: Path, record: dict[str, Any]) -> None:
    record = {"time": time.strftime("%Y-%m-%dT%H:%M:%S"), **record}
    with open(out / "log.jsonl", "a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")
    print(json.dumps(record), flush=True)


def quiet() -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    logging.getLogger("sentence_transformers").setLevel(logging.ERROR)


def set_seed(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def sentence_model(folder: Path) -> Any:
    """Transformer (the folder's BertModel and tokenizer) + mean pooling, as a SentenceTransformer."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.base.modules import Transformer
    from sentence_transformers.sentence_transformer.modules import Pooling

    config = json.loads((Path(folder) / "config.json").read_text(encoding="utf-8"))
    # sdpa where the architecture has it (BERT); MPNet has only the eager attention.
    attention = "sdpa" if config.get("model_type") == "bert" else "eager"
    transformer = Transformer(
        str(folder), max_seq_length=MAX_SEQ_LENGTH, model_kwargs={"attn_implementation": attention}
    )
    # The exported graph has no pooler (export.py loads with add_pooling_layer=False): drop the
    # freshly initialised one so that it is neither trained nor saved.
    transformer.model.pooler = None
    hidden = transformer.model.config.hidden_size
    return SentenceTransformer(modules=[transformer, Pooling(hidden, "mean")], device="cpu")


def base_model(base: str) -> Any:
    """The base as export.py loads it, staged with its shipped tokenizer into a sentence-transformers model.

    Any other ``base`` is a folder with a Hugging Face encoder and its tokenizer (a TinyBERT or
    MobileBERT folder, a sentence-transformers folder such as all-mpnet-base-v2): mean pooling on top.
    """
    from training import export

    if base not in export.BASES:
        return sentence_model(Path(base))

    bert = export.BASES[base]()
    with tempfile.TemporaryDirectory() as tmp:
        stage = Path(tmp)
        bert.save_pretrained(stage)
        for name in TOKENIZER_EXTRAS:
            shutil.copy(export.minilm_l6_folder() / name, stage / name)
        shutil.copy(BASE_TOKENIZERS / base / "tokenizer.json", stage / "tokenizer.json")
        return sentence_model(stage)


def save(model: Any, folder: Path) -> None:
    """``save_pretrained`` of the BertModel + tokenizer files + sentence-transformers module configs."""
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save(str(tmp), create_model_card=False)
    for item in tmp.iterdir():
        target = folder / item.name
        if target.is_dir():
            shutil.rmtree(target)
        item.replace(target)
    tmp.rmdir()


def encode(model: Any, texts: Sequence[str]) -> dict[str, np.ndarray]:
    unique = sorted(set(texts), key=len)
    vectors = model.encode(
        unique, batch_size=EVAL_BATCH, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
    )
    return dict(zip(unique, vectors))


def cosines(model: Any, pairs: Sequence[Pair]) -> np.ndarray:
    vectors = encode(model, [p.a for p in pairs] + [p.b for p in pairs])
    return np.array([float(vectors[p.a] @ vectors[p.b]) for p in pairs])


def evaluate_sts(model: Any, pairs: Sequence[Pair]) -> float:
    return round(100 * spearman(cosines(model, pairs), [p.target for p in pairs]), 2)


def evaluate_events(model: Any, labelled: Sequence[tuple[Pair, str]]) -> dict[str, Any]:
    pairs = [p for p, _ in labelled]
    similarities = cosines(model, pairs)
    duplicate, related, macro_f1 = best_thresholds(similarities, [label for _, label in labelled])
    rho = spearman(similarities, [p.target for p in pairs])
    return {
        "macro_f1": round(macro_f1, 4),
        "spearman": round(100 * rho, 2),
        "thresholds": {"duplicate": duplicate, "related": related},
        "score": round((macro_f1 + rho) / 2, 4),
    }


def length_batches(rows: list[Pair], batch_size: int, rng: random.Random, bucket: int = 32) -> list[list[Pair]]:
    """Batches of similar length (padding is most of the cost on CPU), in random order.

    The (already shuffled) rows are cut into chunks of ``bucket`` batches; each chunk is sorted by
    length and cut into batches; the batches of the epoch are then shuffled.
    """
    batches = []
    for start in range(0, len(rows), batch_size * bucket):
        chunk = sorted(rows[start : start + batch_size * bucket], key=lambda p: len(p.a) + len(p.b))
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches


def optimizer_step(loss: Any, parameters: Any, optimizer: Any, scheduler: Any) -> None:
    """Backward, clip the gradient norm at 1, step the optimizer and the schedule, clear the gradients."""
    import torch

    loss.backward()
    torch.nn.utils.clip_grad_norm_(parameters, 1.0)
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad()
