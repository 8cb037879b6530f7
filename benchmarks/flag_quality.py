"""Flag quality on whole events for every embedding model: the replay's figures and curves side by side.

    python -m benchmarks.flag_quality [--split test] [--models minilm-l6,minilm-l3] [--out docs/benchmarks]

Runs ``manage.py replay_events <streams>/<split>.tsv --model M --curve --json`` for each model (the
app's own path, at each model's card thresholds), and writes ``<out>/flag_quality.json`` (what
``python -m training.report`` puts into docs/models.md) and the precision/recall plot
``<out>/flag_quality_<split>.png``. Prints the JSON. A command that prints figures, not a test.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from embeddings.cards import available

ROOT = Path(__file__).resolve().parent.parent
STREAMS = ROOT / "training" / "data" / "event_pairs" / "streams"


def replay(stream: Path, run: str) -> dict[str, Any]:
    """``run``: a model name, ``model:verifier`` (``minilm-l6:none``: cosine thresholds only), and
    optionally ``@DUP,REL``: other cosine thresholds than the card's (``minilm-l6:none@0.72,0.555``)."""
    run, _, thresholds = run.partition("@")
    model, _, verifier = run.partition(":")
    extra = ["--verifier", verifier] if verifier else []
    extra += ["--thresholds", thresholds] if thresholds else []
    out = subprocess.run(
        [sys.executable, "manage.py", "replay_events", str(stream), "--model", model, *extra, "--curve", "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def precision_at_recall(curve: list[dict[str, Any]], recall: float) -> float | None:
    """The best duplicate-flag precision among thresholds whose recall is at least ``recall``."""
    reached = [p["duplicate_precision"] for p in curve if (p["duplicate_recall"] or 0) >= recall]
    reached = [p for p in reached if p is not None]
    return max(reached) if reached else None


def summarise(model: str, result: dict[str, Any]) -> dict[str, Any]:
    return {
        "model": model,
        "thresholds": result["thresholds"],
        "verifier": result.get("verifier"),
        "overall": result["overall"],
        "before": result["before"],
        "precision_at_recall_0.6": precision_at_recall(result["curve"], 0.6),
        "precision_at_recall_0.7": precision_at_recall(result["curve"], 0.7),
        "curve": result["curve"],
    }


def plot(rows: list[dict[str, Any]], path: Path, title: str) -> None:
    from benchmarks.plots import COLORS, figure, save

    fig, (ax,) = figure(width=5.0, height=3.8)
    for color, row in zip(COLORS, rows):
        points = [p for p in row["curve"] if p["duplicate_precision"] is not None]
        ax.plot(
            [p["duplicate_recall"] for p in points],
            [p["duplicate_precision"] for p in points],
            color=color,
            label=row["model"] + (f" + {row['verifier']['model']}" if row.get("verifier") else ""),
        )
        at = row["overall"]
        ax.plot([at["duplicate_recall"]], [at["duplicate_precision"]], "o", color=color)
    before = next((r["before"] for r in rows if r["model"] == "minilm-l6" and "before" in r), None)
    if before:  # the policy and thresholds shipped until 2026-12-04: top three flags from 0.32, duplicate from 0.56
        ax.plot([before["duplicate_recall"]], [before["duplicate_precision"]], "x", color="#7f7f7f", label="before")
    ax.axhline(0.85, color="#7f7f7f", linestyle=":", linewidth=1)
    ax.axvline(0.6, color="#7f7f7f", linestyle=":", linewidth=1)
    ax.set_xlabel("duplicate recall")
    ax.set_ylabel("duplicate-flag precision")
    ax.set_title(title)
    ax.set_xlim(0, 0.85)
    ax.set_ylim(0.4, 1.0)
    ax.legend(loc="lower left")
    path.parent.mkdir(parents=True, exist_ok=True)
    save(fig, path.parent, path.name)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", default="test", choices=["dev", "test"])
    parser.add_argument(
        "--models",
        help="semicolon-separated, each NAME[:VERIFIER][@DUP,REL] (NAME:none: no verifier; default: every model)",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks")
    parser.add_argument("--plot-only", action="store_true", help="redraw the plot from <out>/flag_quality.json")
    args = parser.parse_args(argv)
    if args.plot_only:
        saved = json.loads((args.out / "flag_quality.json").read_text(encoding="utf-8"))
        title = f"{saved['split'].capitalize()} events replayed (dot: the card's point)"
        plot(saved["models"], args.out / f"flag_quality_{saved['split']}.png", title)
        return
    models = args.models.split(";") if args.models else available("embedding")
    stream = STREAMS / f"{args.split}.tsv"
    rows = [summarise(m.split(":")[0], replay(stream, m)) | {"run": m} for m in models]
    report = {"split": args.split, "streams": str(stream.relative_to(ROOT)), "models": rows}
    (args.out / "flag_quality.json").write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    plot(
        rows,
        args.out / f"flag_quality_{args.split}.png",
        f"{args.split.capitalize()} events replayed (dot: the card's point)",
    )
    print(
        json.dumps(
            {k: v for k, v in report.items() if k != "models"}
            | {"models": [{k: v for k, v in r.items() if k != "curve"} for r in rows]}
        )
    )


if __name__ == "__main__":
    main()
