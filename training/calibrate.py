"""Choose the duplicate / related cosine thresholds that maximise macro-F1, and write them to the card.

    python -m training.calibrate FILE.tsv [FILE.tsv ...] --model NAME [--dry-run] [--json]

Files are labelled pairs (``label, question_a, question_b``; duplicate/related/unrelated, the
SemEval names, or 1/0). Without any related pair only the duplicate threshold is learned, and the
card's related threshold stays (lowered to the duplicate one if it was above it).
"""

from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path
from typing import Any

from embeddings import cli
from embeddings.cards import DEFAULT_EMBEDDING_MODEL, write_card
from embeddings.pairs import read_pairs
from embeddings.runtime import get_model
from training.evaluate import pair_similarities
from training.metrics import best_thresholds


def calibrate(files: list[Path], model_name: str, threads: int, dry_run: bool) -> dict[str, Any]:
    model = get_model(model_name, threads=threads)
    if model.card.task != "embedding":
        raise ValueError(f"model {model_name!r} is a {model.card.task} model; thresholds belong to embedding models")
    pairs = [pair for path in files for pair in read_pairs(path)]
    similarities = pair_similarities(model, pairs)
    duplicate, related, score = best_thresholds(similarities, [p.label for p in pairs])
    if related is None:
        previous = model.card.thresholds.related if model.card.thresholds else duplicate
        related = min(previous, duplicate)
    thresholds = {"duplicate": round(duplicate, 4), "related": round(related, 4)}
    result = {
        "model": model.card.name,
        "files": [str(p) for p in files],
        "pairs": len(pairs),
        "thresholds": thresholds,
        "macro_f1": round(score, 4),
        "written": not dry_run,
    }
    if not dry_run:
        raw = dict(model.card.raw)
        raw["thresholds"] = thresholds
        raw["calibration"] = {k: result[k] for k in ("files", "pairs", "macro_f1")} | {"date": date.today().isoformat()}
        write_card(model.card.directory, raw)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.calibrate", description=__doc__.splitlines()[0])
    parser.add_argument("files", type=Path, nargs="+")
    parser.add_argument("--model", default=DEFAULT_EMBEDDING_MODEL)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--dry-run", action="store_true", help="print the thresholds, leave the card alone")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    return cli.run(
        lambda: calibrate(args.files, args.model, args.threads, args.dry_run),
        args.json,
        lambda r: print(
            f"{r['model']}: duplicate >= {r['thresholds']['duplicate']}, related >= "
            f"{r['thresholds']['related']} (macro-F1 {r['macro_f1']} on {r['pairs']} pairs)"
        ),
    )


if __name__ == "__main__":
    sys.exit(main())
