"""Measure every shipped embedding model and write the figures into its card.

    python -m embeddings.training.card_metrics [--fp32-dir build/fp32]

For each embedding model:
- STSb test Spearman x100 (one text per call, as the functions run), and the same for its fp32
  original when ``--fp32-dir`` holds ``<name>.onnx`` (from ``embeddings.training.export``), so the
  int8 loss is on record;
- duplicate / related thresholds calibrated on the event-question pairs (train + dev), then the
  3-class macro-F1 and Spearman x100 on their test split, and duplicate F1 / ROC AUC on the public
  COVID-Q pairs at those thresholds.
Runs without torch.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

from embeddings.calibrate import calibrate
from embeddings.cards import ModelCard, available, load_card, write_card
from embeddings.evaluate import evaluate_pairs, evaluate_sts
from embeddings.runtime import Model, get_model

SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
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
    calibrate([EVENT_PAIRS / "train.tsv", EVENT_PAIRS / "dev.tsv"], name, threads=0, dry_run=False)
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
    write_card(card.directory, {**card.raw, "metrics": metrics})
    return metrics


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fp32-dir", type=Path, default=Path("build/fp32"))
    parser.add_argument("--stsb-test", type=Path, default=SHARED_DATA / "stsb" / "stsb-en-test.csv")
    parser.add_argument("--model", action="append", help="only these models (default: every embedding model)")
    args = parser.parse_args(argv)
    for name in args.model or available("embedding"):
        print(json.dumps({"model": name, **measure(name, args.fp32_dir, args.stsb_test)}))


if __name__ == "__main__":
    main()
