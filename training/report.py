"""Write ``docs/models.md`` from the figures saved in the model cards, beside the papers' tables.

    python -m training.report [--out docs/models.md]

Every figure comes from a card (``embeddings/models/<name>/model.json``), where the training and
measuring commands wrote it: STSb and event-pair figures from ``training.card_metrics``,
latency from ``card_metrics --latency``, sentiment figures from the sentiment training scripts.
A figure a card does not hold is shown as "n/a", never filled in. Runs without torch.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from embeddings.cards import available, load_card

ROOT = Path(__file__).resolve().parents[1]

# Benešová, Švec, Šuppa (NAACL 2021 Industry), Tables 2 and 3, as summarised in DESIGN.md.
PAPER_SIMILARITY = [
    ("STinyBERT (paper)", 56, 76.76),
    ("SMobileBERT (paper)", 98, 81.52),
    ("SBERT-base (paper)", 420, 85.35),
]
PAPER_SENTIMENT = [("TinyBERT (paper)", 56, 0.82), ("MobileBERT (paper)", 98, 0.84)]


def fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def latency(metrics: dict[str, Any]) -> str:
    lat = metrics.get("latency")
    if not lat:
        return "n/a"
    return f"{lat['q50_ms']:.2f} / {lat['q99_ms']:.2f}"


def shape(card: Any) -> str:
    return f"{card.raw.get('layers')} x {card.raw.get('hidden_size')} | {fmt(card.raw.get('size_mb'), 1)}"


def similarity_rows() -> list[str]:
    rows = []
    for name in available("embedding"):
        card = load_card(name)
        m = card.raw.get("metrics", {})
        event = m.get("event_pairs_test", {})
        covid = m.get("covid_q_pairs", {})
        thresholds = card.raw.get("thresholds") or {}
        rows.append(
            f"| `{name}` | {shape(card)} | {fmt(m.get('stsb_test_spearman'))} "
            f"| {fmt(m.get('stsb_test_spearman_fp32'))} "
            f"| {fmt(event.get('spearman'))} | {fmt(event.get('macro_f1'), 3)} | {fmt(covid.get('roc_auc'), 3)} "
            f"| {fmt(thresholds.get('duplicate'))} / {fmt(thresholds.get('related'))} | {latency(m)} |"
        )
        teacher = m.get("teacher")
        if teacher:  # training only, never shipped: fp32 torch
            t_event = teacher.get("event_pairs_test") or {}
            t_thresholds = teacher.get("thresholds") or {}
            rows.append(
                f"| its teacher ({teacher.get('model_type')}, fp32, training only) "
                f"| {fmt(teacher.get('layers'))} x {fmt(teacher.get('hidden_size'))} "
                f"| {fmt(teacher.get('size_mb_fp32'), 1)} | | {fmt(teacher.get('stsb_test_spearman'))} "
                f"| {fmt(t_event.get('spearman'))} | {fmt(t_event.get('macro_f1'), 3)} | "
                f"| {fmt(t_thresholds.get('duplicate'))} / {fmt(t_thresholds.get('related'))} | |"
            )
    for label, size, stsb in PAPER_SIMILARITY:
        rows.append(f"| {label} | | {size} | {stsb} | | | | | | |")
    return rows


def sentiment_rows() -> list[str]:
    rows = []
    for name in available("sentiment"):
        card = load_card(name)
        m = card.raw.get("metrics", {})
        events = m.get("event_questions") or {}
        rows.append(
            f"| `{name}` | {shape(card)} | {fmt(m.get('macro_f1'), 3)} | {fmt(events.get('macro_f1'), 3)} "
            f"| {latency(m)} |"
        )
        teacher = m.get("teacher") or {}
        for precision in ("fp32", "int8"):
            figures = teacher.get(precision)
            if figures:
                rows.append(
                    f"| its teacher, {precision} | {fmt(teacher.get('layers'))} x 384 "
                    f"| {fmt(teacher.get(f'size_mb_{precision}'), 1)} | {fmt(figures.get('macro_f1'), 3)} "
                    f"| {fmt((figures.get('event_questions') or {}).get('macro_f1'), 3)} | |"
                )
    for label, size, f1 in PAPER_SENTIMENT:
        rows.append(f"| {label} | | {size} | {f1} | | |")
    return rows


def verifier_rows() -> list[str]:
    """Pair readers (``task: verifier``): the dev replay with and without them, from their cards."""
    rows = []
    for name in available("verifier"):
        card = load_card(name).raw
        replay = card.get("metrics", {}).get("dev_replay", {})
        verify = card.get("metrics", {}).get("latency", {}).get("verifier") or {}
        gate = card.get("combine", {}).get("gate")
        pairs = (("cosine alone", replay.get("cosine", {})), (f"`{name}`", replay.get(replay.get("chosen"), {})))
        for label, figures in pairs:
            rows.append(
                f"| {label} | {fmt(card.get('layers'))} x {fmt(card.get('hidden_size'))} "
                f"| {fmt(card.get('size_mb'), 1)} | {fmt(figures.get('precision_at_recall_0.60'), 3)} "
                f"| {fmt(figures.get('precision_at_recall_0.70'), 3)} "
                f"| {fmt(figures.get('recall_at_precision_0.85'), 3)} | {fmt(gate)} "
                f"| {fmt(verify.get('q50_ms'))} / {fmt(verify.get('q99_ms'))} |"
            )
    return rows


def training_notes() -> list[str]:
    notes = []
    for name in available():
        training = load_card(name).raw.get("training")
        if isinstance(training, dict) and training.get("method"):
            notes.append(f"- `{name}`: {training['method']}.")
            for stage in ("distillation", "stage1", "silver", "stage2"):
                info = training.get(stage)
                if isinstance(info, dict) and info.get("data"):
                    selected = info.get("selected") or {}
                    figures = ", ".join(f"{k} {v}" for k, v in selected.items())
                    notes.append(f"  - {stage}: {info['data']}" + (f" (selected: {figures})" if figures else ""))
    return notes


FLAG_QUALITY = ROOT / "docs" / "benchmarks" / "flag_quality.json"


def flag_quality_lines(path: Path = FLAG_QUALITY) -> list[str]:
    """The replay of whole events (``python -m benchmarks.flag_quality``), if it was run."""
    if not path.exists():
        return ["Not measured yet: `python -m benchmarks.flag_quality` writes it."]
    report_ = json.loads(path.read_text(encoding="utf-8"))
    lines = [
        f"Every {report_['split']} event of the pools (`{report_['streams']}`) posted question by question,",
        "in a seeded order, through the app's own path (`python manage.py replay_events FILE --model NAME`):",
        "the flags a moderator would see, at each model's operating point (chosen on the dev events, never",
        "test). Duplicate-flag precision: duplicate flags pointing into the question's own cluster; recall:",
        "questions with an earlier paraphrase that got such a flag; related-flag precision: related flags",
        "pointing into the question's topic. P@R: the best duplicate-flag precision at a recall of at least",
        "0.6 / 0.7 along the curve. Targets: precision >= 0.85 at recall >= 0.60, related >= 0.70, at most",
        "0.8 flags a question, P@R0.7 >= 0.80.",
        "",
        "| model | verifier | operating point | dup precision | dup recall | related precision | flags / question "
        "| first flag right | P@R0.6 | P@R0.7 |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in report_["models"]:
        o, t, v = row["overall"], row["thresholds"], row.get("verifier")
        point = f"cos >= {t['duplicate']} / rel >= {t['related']}"
        if v:
            point += f"; verifier >= {v['duplicate']} from cos {v['gate']}" + (
                ", numbers veto" if v.get("veto") else ""
            )
        lines.append(
            f"| `{row['model']}` | {v['model'] if v else 'none'} | {point} | {fmt(o['duplicate_precision'], 3)} "
            f"| {fmt(o['duplicate_recall'], 3)} | {fmt(o['related_precision'], 3)} | {fmt(o['flags_per_question'], 2)} "
            f"| {fmt(o['first_flag_right'], 3)} | {fmt(row['precision_at_recall_0.6'], 3)} "
            f"| {fmt(row['precision_at_recall_0.7'], 3)} |"
        )
    lines += ["", f"![precision/recall of duplicate flags](benchmarks/flag_quality_{report_['split']}.png)"]
    return lines


def render() -> str:
    lines = [
        "# Models: quality, size and speed beside the papers",
        "",
        "Written by `python -m training.report` from the figures in the model cards",
        "(`embeddings/models/*/model.json`); do not edit by hand. The cards get their figures from",
        "`python -m training.card_metrics` (STSb, event pairs, COVID-Q) and",
        "`python -m training.card_metrics --latency` (q50 / q99 of one short text per call,",
        "in-process, 1 intra-op thread). The papers' rows are Benešová et al. (NAACL 2021 Industry),",
        "Tables 2 and 3; their latency was measured on AWS Lambda, ours on the machine the card names.",
        "",
        "## Similarity (the paper's Table 2)",
        "",
        "STSb: test Spearman x100 of cosine against gold (int8 as shipped; fp32 original beside it).",
        "Event pairs: the project's duplicate / related / unrelated test split (unseen events), Spearman",
        "x100 against targets 1 / 0.5 / 0 and 3-class macro-F1 at thresholds fitted for macro-F1 on the",
        "dev split (a retired target, kept for comparison). COVID-Q: ROC AUC of the duplicate class on",
        "public question pairs no model trained on. The thresholds column is what the app flags with:",
        "chosen on whole dev events for the moderator's cost (below).",
        "",
        "| model | layers x width | size MB | STSb test | STSb fp32 | event test Spearman | event test macro-F1 "
        "| COVID-Q AUC | flag thresholds dup / rel | q50 / q99 ms |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        *similarity_rows(),
        "",
        "## Flags on whole events (what a moderator sees)",
        "",
        *flag_quality_lines(),
        "",
        "What was tried and not shipped, with its figures: [functions.md](functions.md#flags-a-moderator-can-trust).",
        "",
        "## Sentiment (the paper's Table 3)",
        "",
        "Macro-F1 on the held-out gold split (tweets, VADER sentences and event questions), and on the",
        "event questions of that split alone.",
        "",
        "| model | layers x width | size MB | held-out macro-F1 | event questions macro-F1 | q50 / q99 ms |",
        "| --- | --- | --- | --- | --- | --- |",
        *sentiment_rows(),
        "",
        "## Verifier (a pair reader on the best match)",
        "",
        "Dev replay proxy (`python -m training verifier`): each dev question's best earlier match",
        "by minilm-l6 cosine; with the verifier, a flag needs cosine >= gate and the verifier's score >= a",
        "threshold. P@R: best precision at recall >= 0.60 / 0.70; R@P0.85: most recall at precision >= 0.85.",
        "Latency: tokenise + run of one pair, 1 thread.",
        "",
        "| model | layers x width | size MB | P@R0.60 | P@R0.70 | R@P0.85 | gate | q50 / q99 ms |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
        *verifier_rows(),
        "",
        "## How each model was trained",
        "",
        *training_notes(),
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m training.report", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "models.md")
    args = parser.parse_args(argv)
    args.out.write_text(render(), encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
