"""``python -m training.evaluate`` and ``python -m training.calibrate`` as a user runs them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from embeddings.cards import MODELS_DIR
from tests.conftest import SHARED_DATA, needs_stsb, run_module

DUPLICATES = [
    ("Will the slides be shared after the talk?", "Are you going to share the slides afterwards?"),
    ("Is there a recording of this session?", "Will this session be recorded?"),
    ("How much does the pro plan cost?", "What is the price of the pro plan?"),
]
RELATED = [
    ("Will the slides be shared after the talk?", "Will the recording be shared too?"),
    ("How much does the pro plan cost?", "Does the pro plan include single sign-on?"),
    ("When is the exam?", "Which chapters are on the exam?"),
]
UNRELATED = [
    ("Will the slides be shared after the talk?", "Where is the nearest parking garage?"),
    ("How much does the pro plan cost?", "Who won the football match yesterday?"),
    ("When is the exam?", "Is there vegetarian food at lunch?"),
]


def pair_rows(label_dup: str, label_rel: str | None, label_unrel: str) -> list[str]:
    rows = [f"{label_dup}\t{a}\t{b}" for a, b in DUPLICATES]
    if label_rel:
        rows += [f"{label_rel}\t{a}\t{b}" for a, b in RELATED]
    return rows + [f"{label_unrel}\t{a}\t{b}" for a, b in UNRELATED]


@needs_stsb
def test_sts_spearman_on_a_slice_of_stsb(tmp_path: Path):
    lines = (SHARED_DATA / "stsb" / "stsb-en-dev.csv").read_text(encoding="utf-8").splitlines()[:150]
    path = tmp_path / "dev150.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    code, result, err = run_module("training.evaluate", "sts", str(path), "--model", "minilm-l3", "--json")
    assert code == 0, err
    assert result["model"] == "minilm-l3" and result["pairs"] == 150
    assert 70 < result["spearman"] <= 100


def test_three_way_pairs_report_macro_f1_confusion_and_spearman(write_tsv):
    path = write_tsv("three.tsv", "label\tquestion_a\tquestion_b", pair_rows("duplicate", "related", "unrelated"))
    code, result, err = run_module(
        "training.evaluate", "pairs", str(path), "--duplicate", "0.7", "--related", "0.35", "--json"
    )
    assert code == 0, err
    assert set(result) >= {"macro_f1", "per_class", "confusion", "spearman", "thresholds"}
    assert result["thresholds"] == {"duplicate": 0.7, "related": 0.35}
    assert sum(sum(row.values()) for row in result["confusion"].values()) == 9
    assert result["spearman"] > 50
    assert result["per_class"]["unrelated"]["recall"] == 1.0


def test_binary_pairs_report_precision_recall_and_auc(write_tsv):
    path = write_tsv("binary.tsv", "label\tquestion_a\tquestion_b", pair_rows("1", None, "0"))
    code, result, err = run_module("training.evaluate", "pairs", str(path), "--json")
    assert code == 0, err
    assert set(result) >= {"precision", "recall", "f1", "roc_auc"}
    assert result["roc_auc"] == 1.0


def test_sentiment_file(write_tsv):
    rows = [
        "positive\tThis was the best keynote I have seen in years, thank you!",
        "negative\tThe sound has been awful for the whole session and nobody fixes it.",
        "neutral\tWhat time does the afternoon workshop start?",
    ]
    path = write_tsv("sent.tsv", "label\ttext", rows)
    code, result, err = run_module("training.evaluate", "sentiment", str(path), "--json")
    assert code == 0, err
    assert result["rows"] == 3
    assert set(result["per_class"]) == {"negative", "neutral", "positive"}
    assert 0 <= result["macro_f1"] <= 1


def test_malformed_file_gives_file_and_line_not_a_traceback(write_tsv):
    path = write_tsv("broken.tsv", "label\tquestion_a\tquestion_b", ["duplicate\ta\tb", "duplicate\tmissing a column"])
    code, result, err = run_module("training.evaluate", "pairs", str(path), "--json")
    assert code == 2 and result is None
    assert f"{path}:3:" in err
    assert "Traceback" not in err


def test_unknown_model_is_a_clear_error(write_tsv):
    path = write_tsv("ok.tsv", "label\tquestion_a\tquestion_b", pair_rows("1", None, "0"))
    code, _, err = run_module("training.evaluate", "pairs", str(path), "--model", "nope", "--json")
    assert code == 2
    assert "unknown model 'nope'" in err and "Traceback" not in err


@pytest.fixture
def models_copy(tmp_path: Path) -> Path:
    """A models folder whose cards a test may rewrite (ONNX files linked, not copied)."""
    target = tmp_path / "models"
    for source in MODELS_DIR.iterdir():
        if (source / "model.json").exists():
            (target / source.name).mkdir(parents=True)
            for f in source.iterdir():
                if f.suffix == ".json":
                    shutil.copy(f, target / source.name / f.name)
                else:
                    (target / source.name / f.name).symlink_to(f)
    return target


def test_calibrate_writes_thresholds_into_the_card(write_tsv, models_copy: Path):
    path = write_tsv("cal.tsv", "label\tquestion_a\tquestion_b", pair_rows("duplicate", "related", "unrelated"))
    env = {"EMBEDDINGS_MODELS_DIR": str(models_copy), "EMBEDDINGS_PRELOAD": ""}
    code, result, err = run_module("training.calibrate", str(path), "--model", "minilm-l3", "--json", env=env)
    assert code == 0, err
    assert result["written"] is True
    assert result["thresholds"]["duplicate"] >= result["thresholds"]["related"]
    card = json.loads((models_copy / "minilm-l3" / "model.json").read_text())
    assert card["thresholds"] == result["thresholds"]
    assert card["calibration"]["pairs"] == 9
    # The shipped card is untouched.
    shipped = json.loads((MODELS_DIR / "minilm-l3" / "model.json").read_text())
    assert shipped.get("calibration", {}).get("pairs") != 9


def test_calibrate_dry_run_leaves_the_card_alone(write_tsv, models_copy: Path):
    path = write_tsv("cal.tsv", "label\tquestion_a\tquestion_b", pair_rows("1", None, "0"))
    before = (models_copy / "minilm-l6" / "model.json").read_text()
    env = {"EMBEDDINGS_MODELS_DIR": str(models_copy), "EMBEDDINGS_PRELOAD": ""}
    code, result, err = run_module(
        "training.calibrate", str(path), "--model", "minilm-l6", "--dry-run", "--json", env=env
    )
    assert code == 0, err
    assert result["written"] is False
    assert (models_copy / "minilm-l6" / "model.json").read_text() == before
