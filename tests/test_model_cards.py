"""Every shipped model directory is complete and its card says what it measured."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from embeddings.cards import MODELS_DIR, ModelCard, Thresholds, available, load_card
from embeddings.errors import ModelNotFound

SHIPPED = available()


def test_the_default_models_ship():
    assert {"minilm-l6", "minilm-l3"} <= set(available("embedding"))
    assert available("sentiment"), "no sentiment model shipped"


@pytest.mark.parametrize("name", SHIPPED)
def test_card_is_complete(name: str):
    card = load_card(name)
    raw = card.raw
    for key in ("architecture", "layers", "hidden_size", "max_tokens", "license", "source", "metrics", "size_mb"):
        assert key in raw, f"{name}: card lacks {key}"
    assert card.model_path.stat().st_size / 1e6 == pytest.approx(raw["size_mb"], abs=0.1)
    if card.task == "embedding":
        assert card.output_dim == 384 and card.pooling == "mean"
        assert card.thresholds is not None and card.thresholds.duplicate >= card.thresholds.related
        assert raw["metrics"]["stsb_test_spearman"] > 80
    elif card.task == "verifier":
        assert card.output_dim == 1 and {"gate", "w_cosine", "w_logit", "bias"} <= set(raw["combine"])
        assert "dev_replay" in raw["metrics"] and "latency" in raw["metrics"]
    else:
        assert card.labels == ("negative", "neutral", "positive")
        assert 0 < raw["metrics"]["macro_f1"] <= 1


def test_models_stay_under_the_repository_budget():
    total = sum(f.stat().st_size for f in MODELS_DIR.rglob("*") if f.is_file())
    assert total < 100e6


def test_missing_file_is_named(tmp_path: Path):
    (tmp_path / "model.json").write_text(json.dumps({"task": "embedding", "max_tokens": 128, "output_dim": 384}))
    (tmp_path / "tokenizer.json").write_text("{}")
    with pytest.raises(ModelNotFound, match=str(tmp_path / "model.onnx")):
        ModelCard.from_dir(tmp_path)


def test_broken_card_is_named(tmp_path: Path):
    (tmp_path / "model.json").write_text('{"task": "embedding",\n "max_tokens": }')
    with pytest.raises(ModelNotFound, match=r"model\.json: line 2"):
        ModelCard.from_dir(tmp_path)


def test_thresholds_classify_by_bands():
    t = Thresholds(duplicate=0.8, related=0.5)
    assert [t.classify(s) for s in (0.9, 0.8, 0.6, 0.5, 0.1)] == [
        "duplicate",
        "duplicate",
        "related",
        "related",
        "unrelated",
    ]
    with pytest.raises(ValueError):
        Thresholds(duplicate=0.4, related=0.5)
