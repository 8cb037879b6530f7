"""Measure every shipped embedding model and write the figures into its card.

    python -m training.card_metrics [--fp32-dir build/fp32]

For each embedding model:
- STSb test Spearman x100 (one text per call, as the functions run), and the same for its fp32
  original when ``--fp32-dir`` holds ``<name>.onnx`` (from ``training.export``), so the
  int8 loss is on record;
- the 3-class macro-F1 and Spearman x100 on the event-question pairs' test split, and duplicate F1 /
  ROC AUC on the public COVID-Q pairs, at thresholds fitted for macro-F1 on the pairs' dev split (so
  these figures stay comparable with earlier cards). The thresholds the app flags with are not these:
  they come from replaying whole dev events (``manage.py replay_events --calibrate --write``) and
  are left as they are.
- with ``--latency``, every model (embedding and sentiment): q50 / q99 of one short text per call
  in this process at 1 intra-op thread, over the bench's STSb texts, and the CPU it ran on.
- with ``--teacher DIR [--model NAME]``: a torch model folder (such as the fine-tuned
  all-mpnet-base-v2 teacher), measured the same way (thresholds from event dev, figures on event
  test and STSb test), printed, and with ``--model`` written into that model's card as the teacher
  it was distilled from (needs torch: the training environment).
Runs without torch, but for ``--teacher``.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np

from embeddings.cards import ModelCard, available, load_card, write_card
from embeddings.runtime import Model, get_model
from training import corpora, sbert
from training.calibrate import calibrate
from training.evaluate import evaluate_pairs, evaluate_sts

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
EVENT_PAIRS = Path(__file__).resolve().parent / "data" / "event_pairs"


def fp32_model(card: ModelCard, onnx_path: Path, workdir: Path) -> Model:
    """A throwaway model directory: the fp32 graph with the shipped card and tokenizer."""
    directory = workdir / card.name
    directory.mkdir()
    (directory / "model.onnx").symlink_to(onnx_path.resolve())
    shutil.copy(card.tokenizer_path, directory / "tokenizer.json")
    write_card(directory, {**card.raw, "files": {"model": "model.onnx", "tokenizer": "tokenizer.json"}})
    return Model(ModelCard.from_dir(directory), threads=0)


def measure(name: str, fp32_dir: Path | None, stsb_test: Path) -> dict[str, object]:
    # Dev only: the fine-tuned models have learned the train pairs, so thresholds fitted there sit
    # where the train pairs are easiest to separate, not where unseen events' pairs fall.
    shipped = {k: v for k, v in load_card(name).raw.items() if k in ("thresholds", "calibration")}
    calibrate([EVENT_PAIRS / "dev.tsv"], name, threads=0, dry_run=False)
    card = load_card(name)
    model = get_model(name, threads=0)
    metrics: dict[str, object] = dict(card.raw.get("metrics", {}))
    metrics["stsb_test_spearman"] = evaluate_sts(stsb_test, model)["spearman"]
    fp32 = fp32_dir / f"{name}.onnx" if fp32_dir else None
    if fp32 and fp32.exists():
        with tempfile.TemporaryDirectory() as tmp:
            metrics["stsb_test_spearman_fp32"] = evaluate_sts(stsb_test, fp32_model(card, fp32, Path(tmp)))["spearman"]
    event = evaluate_pairs(EVENT_PAIRS / "test.tsv", Model(card, threads=0))
    metrics["event_pairs_test"] = {k: event[k] for k in ("pairs", "macro_f1", "spearman")}
    covid = evaluate_pairs(SHARED_DATA / "pairs" / "covid_q_pairs" / "pairs.tsv", Model(card, threads=0))
    metrics["covid_q_pairs"] = {k: covid[k] for k in ("pairs", "precision", "recall", "f1", "roc_auc")}
    if shipped.get("calibration", {}).get("method", "").startswith("manage.py replay_events"):
        metrics["event_pairs_test"]["thresholds"] = card.raw["thresholds"]  # the pairs' macro-F1 ones
        write_card(card.directory, {**card.raw, "metrics": metrics, **shipped})
    else:
        write_card(card.directory, {**card.raw, "metrics": metrics})
    return metrics


def measure_teacher(folder: Path, name: str | None, stsb_test: Path) -> dict[str, object]:
    """A torch model folder's figures (fp32), as ``measure`` takes them; into ``name``'s card if given."""
    from embeddings.pairs import read_pairs
    from training.datasets import read_sts
    from training.metrics import (
        PAIR_CLASSES,
        PAIR_TARGETS,
        best_thresholds,
        classification_report,
        classify_similarities,
        spearman,
    )

    model = sbert.sentence_model(folder)

    def cosines(pairs: list) -> np.ndarray:
        return sbert.cosines(model, [corpora.Pair(p.a, p.b, 0.0) for p in pairs])

    sts = read_sts(stsb_test)
    dev, test = read_pairs(EVENT_PAIRS / "dev.tsv"), read_pairs(EVENT_PAIRS / "test.tsv")
    duplicate, related, _ = best_thresholds(cosines(dev), [p.label for p in dev])
    similarities = cosines(test)
    gold = [p.label for p in test]
    predicted = list(classify_similarities(similarities, duplicate, related))
    report = classification_report(gold, predicted, PAIR_CLASSES)
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    weights = sum(f.stat().st_size for f in folder.glob("*.safetensors"))
    teacher = {
        "folder": str(folder),
        "model_type": config.get("model_type"),
        "layers": config.get("num_hidden_layers"),
        "hidden_size": config.get("hidden_size"),
        "size_mb_fp32": round(weights / 1e6, 1),
        "stsb_test_spearman": round(100 * spearman(cosines(sts), [p.score for p in sts]), 2),
        "thresholds": {"duplicate": duplicate, "related": related},
        "event_pairs_test": {
            "pairs": len(test),
            "macro_f1": round(report["macro_f1"], 4),
            "spearman": round(100 * spearman(similarities, [PAIR_TARGETS[g] for g in gold]), 2),
        },
    }
    if name:
        card = load_card(name)
        write_card(card.directory, {**card.raw, "metrics": {**card.raw.get("metrics", {}), "teacher": teacher}})
    return teacher


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def latency_record(ms: list[float]) -> dict[str, object]:
    """q50 / q99 of one-call timings at 1 thread, with the CPU and the day they were taken on."""
    return {
        "q50_ms": round(float(np.percentile(ms, 50)), 3),
        "q99_ms": round(float(np.percentile(ms, 99)), 3),
        "requests": len(ms),
        "threads": 1,
        "cpu": cpu_name(),
        "date": date.today().isoformat(),
    }


def measure_latency(name: str, requests: int) -> dict[str, object]:
    """One text per call, in-process, 1 thread: as ``benchmarks.bench --backend local`` at C=1."""
    from training.datasets import DEFAULT_TEXTS, load_texts

    texts = load_texts(DEFAULT_TEXTS)
    model = Model(load_card(name), threads=1)
    call = model.classify if model.card.task == "sentiment" else model.embed
    for text in texts[:200]:
        call([text])
    ms = []
    for i in range(requests):
        start = time.perf_counter()
        call([texts[i % len(texts)]])
        ms.append((time.perf_counter() - start) * 1000)
    latency = latency_record(ms)
    card = load_card(name)
    write_card(card.directory, {**card.raw, "metrics": {**card.raw.get("metrics", {}), "latency": latency}})
    return latency


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fp32-dir", type=Path, default=Path("build/fp32"))
    parser.add_argument("--stsb-test", type=Path, default=SHARED_DATA / "stsb" / "stsb-en-test.csv")
    parser.add_argument("--model", action="append", help="only these models (default: every embedding model)")
    parser.add_argument("--latency", action="store_true", help="only measure q50 / q99 of every model (or --model)")
    parser.add_argument("--requests", type=int, default=3000, help="with --latency: calls per model")
    parser.add_argument("--teacher", type=Path, help="measure this fp32 teacher folder into --model's card")
    args = parser.parse_args(argv)
    if args.teacher:
        if args.model and len(args.model) != 1:
            parser.error("--teacher takes at most one --model: the card to write into")
        name = args.model[0] if args.model else None
        print(json.dumps({"model": name, "teacher": measure_teacher(args.teacher, name, args.stsb_test)}))
        return
    if args.latency:
        for name in args.model or available():
            print(json.dumps({"model": name, "latency": measure_latency(name, args.requests)}))
        return
    for name in args.model or available("embedding"):
        print(json.dumps({"model": name, **measure(name, args.fp32_dir, args.stsb_test)}))


if __name__ == "__main__":
    main()
