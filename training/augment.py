"""Augmented SBERT for the event domain: a cross-encoder teacher, BM25-mined pairs, silver labels.

Run inside the training environment (``.venv-train``) from the repository root::

    python -m training.augment cross --init build/finetuned/minilm-l6/stage1 --out build/augment
    python -m training.augment mine --bi-encoder build/finetuned/minilm-l6/stage1 --out build/augment

The recipe of Thakur et al. (2021, "Augmented SBERT"), as Benešová et al. grew their target-domain
set: few gold pairs, many unlabelled questions.

* ``cross``: a cross-encoder (BERT on "[CLS] a [SEP] b [SEP]", a linear head on [CLS], a sigmoid)
  learns the gold targets (duplicate 1, related 0.5, unrelated 0) from every pair the labelling
  rules allow among the *train* events' pools, plus STSb train (score / 5) and the SemEval-2016
  Task 3 train pairs (PerfectMatch / Relevant / Irrelevant as 1 / 0.5 / 0). Reading both texts at
  once, it separates "same ask" from "same topic" better than two independent vectors. The
  checkpoint with the best event dev macro-F1 (at its best thresholds) is kept.
* ``mine``: candidate pairs among unlabelled questions (the train events' questions, across events,
  where no gold label exists, and the short SemEval questions): each question's top BM25 matches
  and its nearest neighbours under the bi-encoder. The cross-encoder labels them (both orders,
  averaged); the pairs are balanced over score bins so that silver is not all "unrelated", and
  written to ``silver.tsv`` (``score<TAB>a<TAB>b``). ``finetune --silver`` trains on them before
  the gold pairs.

Nothing here reads STSb test or event dev/test texts (dev is read for selection only).
"""

from __future__ import annotations

import argparse
import json
import math
import random
import re
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from embeddings.pairs import read_pairs
from training import corpora, finetune, sbert
from training.corpora import Pair, write_silver
from training.metrics import best_thresholds
from training.sbert import log

SEMEVAL = corpora.SHARED_DATA / "pairs" / "semeval2016_task3_b"
SEMEVAL_TARGETS = {"duplicate": 1.0, "related": 0.5, "unrelated": 0.0}  # PerfectMatch / Relevant / Irrelevant
CROSS_DIR = "cross"
SILVER = "silver.tsv"
MAX_PAIR_TOKENS = 128
BINS = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0001)


# --- data -----------------------------------------------------------------------------------


def semeval_train() -> list[Pair]:
    rows = []
    for name in ("train_part1_3way.tsv", "train_extra_3way.tsv"):
        for p in read_pairs(SEMEVAL / name):
            rows.append(Pair(p.a, p.b, SEMEVAL_TARGETS[p.label]))
    return rows


def gold_epoch(rng: random.Random, pools: dict[str, list[tuple[str, str]]], per_class: int) -> list[Pair]:
    rows = []
    for kind, target in (("duplicate", 1.0), ("related", 0.5), ("unrelated", 0.0), ("unrelated_cross", 0.0)):
        n = per_class // 4 if kind == "unrelated_cross" else per_class
        for a, b in rng.sample(pools[kind], min(n, len(pools[kind]))):
            rows.append(Pair(a, b, target) if rng.random() < 0.5 else Pair(b, a, target))
    return rows


# --- the cross-encoder ----------------------------------------------------------------------


class CrossEncoder:
    """BertModel + Linear(hidden, 1) on [CLS]; score = sigmoid(logit), symmetric by averaging both orders."""

    def __init__(self, folder: Path) -> None:
        import torch
        from transformers import AutoTokenizer, BertModel

        self.tokenizer = AutoTokenizer.from_pretrained(str(folder))
        self.bert = BertModel.from_pretrained(str(folder), add_pooling_layer=False, attn_implementation="sdpa")
        self.head = torch.nn.Linear(self.bert.config.hidden_size, 1)
        head_file = folder / "head.pt"
        if head_file.exists():
            self.head.load_state_dict(torch.load(head_file))

    def parameters(self) -> list[Any]:
        return [*self.bert.parameters(), *self.head.parameters()]

    def train(self, mode: bool = True) -> None:
        self.bert.train(mode)
        self.head.train(mode)

    def logits(self, a: Sequence[str], b: Sequence[str]) -> Any:
        features = self.tokenizer(
            list(a), list(b), padding=True, truncation=True, max_length=MAX_PAIR_TOKENS, return_tensors="pt"
        )
        hidden = self.bert(**features).last_hidden_state
        return self.head(hidden[:, 0]).squeeze(-1)

    def score(self, pairs: Sequence[tuple[str, str]], batch_size: int = 128) -> np.ndarray:
        import torch

        self.train(False)
        order = sorted(range(len(pairs)), key=lambda i: len(pairs[i][0]) + len(pairs[i][1]))
        scores = np.zeros(len(pairs), dtype=np.float32)
        with torch.no_grad():
            for start in range(0, len(order), batch_size):
                idx = order[start : start + batch_size]
                a = [pairs[i][0] for i in idx]
                b = [pairs[i][1] for i in idx]
                both = torch.sigmoid(self.logits(a, b)) + torch.sigmoid(self.logits(b, a))
                scores[idx] = (both / 2).numpy()
        return scores

    def save(self, folder: Path) -> None:
        import torch

        folder.mkdir(parents=True, exist_ok=True)
        self.bert.save_pretrained(str(folder))
        self.tokenizer.save_pretrained(str(folder))
        torch.save(self.head.state_dict(), folder / "head.pt")


def evaluate_cross(model: CrossEncoder, labelled: Sequence[tuple[Pair, str]]) -> dict[str, Any]:
    scores = model.score([(p.a, p.b) for p, _ in labelled])
    duplicate, related, macro_f1 = best_thresholds(scores, [label for _, label in labelled])
    rho = finetune.spearman(scores, [p.target for p, _ in labelled])
    return {
        "event_dev_macro_f1": round(macro_f1, 4),
        "event_dev_spearman": round(100 * rho, 2),
        "thresholds": {"duplicate": duplicate, "related": related},
    }


def train_cross(args: argparse.Namespace) -> dict[str, Any]:
    import torch
    from transformers import get_linear_schedule_with_warmup

    torch.set_num_threads(args.threads)
    sbert.quiet()
    out = args.out / CROSS_DIR
    out.mkdir(parents=True, exist_ok=True)
    if (out / "stage.json").exists():
        print(f"{out / 'stage.json'} exists: nothing to do")
        return json.loads((out / "stage.json").read_text(encoding="utf-8"))
    sbert.set_seed(args.seed)
    pools = corpora.train_pool_pairs()
    sts = corpora.stsb_pairs("train")
    semeval = semeval_train()
    dev = corpora.event_pairs("dev")
    log(args.out, {"event": "cross start", "pools": {k: len(v) for k, v in pools.items()}, "semeval": len(semeval)})

    def epoch_rows(epoch: int) -> list[Pair]:
        rng = random.Random(f"{args.seed}:cross:{epoch}")
        rows = gold_epoch(rng, pools, args.per_class)
        rows += rng.sample(sts, min(len(sts), len(rows) // 3))
        rows += rng.sample(semeval, min(len(semeval), len(rows) // 8))
        rng.shuffle(rows)
        return rows

    model = CrossEncoder(args.init)
    epochs = [sbert.length_batches(epoch_rows(e), args.batch_size, random.Random(e)) for e in range(args.epochs)]
    total = sum(len(b) for b in epochs)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr)
    scheduler = get_linear_schedule_with_warmup(optimizer, round(0.1 * total), total)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    best: dict[str, Any] = {"event_dev_macro_f1": -1.0}
    step, started = 0, time.perf_counter()
    for epoch, batches in enumerate(epochs):
        marks = {math.ceil(len(batches) * (k + 1) / args.evals_per_epoch) for k in range(args.evals_per_epoch)}
        running = []
        model.train()
        for i, batch in enumerate(batches):
            logits = model.logits([p.a for p in batch], [p.b for p in batch])
            loss = loss_fn(logits, torch.tensor([p.target for p in batch], dtype=torch.float32))
            sbert.optimizer_step(loss, model.parameters(), optimizer, scheduler)
            step += 1
            running.append(loss.item())
            if step % 50 == 0:
                rate = (time.perf_counter() - started) / step
                left = rate * (total - step) / 60
                print(f"[cross] step {step}/{total} loss {np.mean(running):.4f} (~{left:.1f} min left)", flush=True)
            if i + 1 in marks:
                record = {"stage": "cross", "epoch": round(epoch + (i + 1) / len(batches), 2), "step": step}
                record.update(evaluate_cross(model, dev), train_loss=round(float(np.mean(running)), 5))
                record["selected"] = record["event_dev_macro_f1"] > best["event_dev_macro_f1"]
                if record["selected"]:
                    best = record
                    model.save(out)
                log(args.out, record)
                running = []
                model.train()
    summary = {
        "best": best,
        "init": str(args.init),
        "data": f"per epoch {args.per_class} pairs per class from the train events' pools (unrelated + 1/4 "
        "cross-event), 1/3 as many STSb train pairs, 1/8 as many SemEval-2016 3B train pairs",
        "epochs": args.epochs,
        "lr": args.lr,
        "batch_size": args.batch_size,
        "train_s": round(time.perf_counter() - started, 1),
    }
    (out / "stage.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary


# --- mining ---------------------------------------------------------------------------------

WORD = re.compile(r"[a-z0-9]+")


def bm25_top(texts: list[str], k: int, k1: float = 1.2, b: float = 0.75) -> list[list[int]]:
    """Each text's ``k`` best BM25 matches among the others (the text itself is the query)."""
    docs = [WORD.findall(t.lower()) for t in texts]
    df = Counter(w for d in docs for w in set(d))
    n = len(docs)
    idf = {w: math.log(1 + (n - f + 0.5) / (f + 0.5)) for w, f in df.items()}
    avg = sum(map(len, docs)) / max(n, 1)
    postings: dict[str, list[tuple[int, float]]] = {}
    for i, d in enumerate(docs):
        for w, tf in Counter(d).items():
            weight = idf[w] * tf * (k1 + 1) / (tf + k1 * (1 - b + b * len(d) / avg))
            postings.setdefault(w, []).append((i, weight))
    top = []
    for i, d in enumerate(docs):
        scores: Counter[int] = Counter()
        for w in set(d):
            for j, weight in postings[w]:
                if j != i:
                    scores[j] += weight
        top.append([j for j, _ in scores.most_common(k)])
    return top


def unlabelled_questions() -> tuple[list[str], dict[str, str]]:
    """Train events' questions and the short SemEval train questions, each with where it comes from."""
    build = corpora.load_pool_builder()
    events = build.load_all_events()
    build.assign_splits(events)
    origin = {t: e.id for e in events if e.split == "train" for c in e.clusters for t in c.texts}
    for p in semeval_train():
        if len(p.a) <= 200:
            origin.setdefault(p.a, "semeval")
    return sorted(origin), origin


def mine(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    torch.set_num_threads(args.threads)
    sbert.quiet()
    texts, event_of = unlabelled_questions()
    candidates: set[tuple[str, str]] = set()
    for i, neighbours in enumerate(bm25_top(texts, args.top_k)):
        for j in neighbours:
            candidates.add(tuple(sorted((texts[i], texts[j]))))
    bi = sbert.sentence_model(args.bi_encoder)
    vectors = sbert.encode(bi, texts)
    matrix = np.stack([vectors[t] for t in texts])
    sims = matrix @ matrix.T
    np.fill_diagonal(sims, -1)
    for i in range(len(texts)):
        for j in np.argsort(-sims[i])[: args.top_k]:
            candidates.add(tuple(sorted((texts[i], texts[int(j)]))))
    # Pairs inside one train event have gold labels from the pools: silver is for the rest.
    pairs = sorted(p for p in candidates if event_of[p[0]] != event_of[p[1]] or event_of[p[0]] == "semeval")
    cross = CrossEncoder(args.out / CROSS_DIR)
    started = time.perf_counter()
    scores = cross.score(pairs)
    log(args.out, {"event": "silver scored", "pairs": len(pairs), "s": round(time.perf_counter() - started, 1)})
    # Balance over score bins: as many pairs from each bin as the rarest bin above 0.4 has (at
    # least ``min_per_bin``), so that duplicates and related pairs are not drowned in unrelated ones.
    rng = random.Random(args.seed)
    bins = np.digitize(scores, BINS[1:-1])
    members = [list(np.flatnonzero(bins == k)) for k in range(len(BINS) - 1)]
    cap = max(args.min_per_bin, min(len(m) for m in members[2:]) if all(members[2:]) else args.min_per_bin)
    chosen = [i for m in members for i in rng.sample(m, min(len(m), cap))]
    rng.shuffle(chosen)
    path = args.out / SILVER
    write_silver(path, [Pair(*pairs[i], float(scores[i])) for i in chosen])
    summary = {
        "questions": len(texts),
        "candidates": len(pairs),
        "per_bin_before": [len(m) for m in members],
        "per_bin_kept": [min(len(m), cap) for m in members],
        "silver": len(chosen),
        "file": str(path),
    }
    log(args.out, {"event": "silver written", **summary})
    return summary


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m training.augment", description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=["cross", "mine"])
    parser.add_argument("--out", type=Path, default=Path("build/augment"))
    parser.add_argument("--init", type=Path, help="cross: the encoder to start from (a save_pretrained folder)")
    parser.add_argument("--bi-encoder", type=Path, help="mine: the bi-encoder for nearest neighbours")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--per-class", type=int, default=1500, help="cross: gold pool pairs per class per epoch")
    parser.add_argument("--lr", type=float, default=3e-5)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--evals-per-epoch", type=int, default=2)
    parser.add_argument("--top-k", type=int, default=5, help="mine: BM25 and nearest-neighbour matches per question")
    parser.add_argument("--min-per-bin", type=int, default=500)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--threads", type=int, default=sbert.THREADS)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.step == "cross":
        if args.init is None:
            parser.error("cross needs --init")
        print(json.dumps(train_cross(args)["best"]))
    else:
        if args.bi_encoder is None:
            parser.error("mine needs --bi-encoder")
        print(json.dumps(mine(args)))


if __name__ == "__main__":
    main()
