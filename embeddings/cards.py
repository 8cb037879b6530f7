"""Model cards: what a model directory under ``embeddings/models/<name>/`` holds and claims."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from embeddings.errors import ModelNotFound

MODELS_DIR = Path(__file__).resolve().parent / "models"
# What the functions serve when an event names no model (a deployment sets its own).
DEFAULT_EMBEDDING_MODEL = os.environ.get("EMBEDDING_MODEL", "minilm-l6")
DEFAULT_SENTIMENT_MODEL = os.environ.get("SENTIMENT_MODEL", "sentiment-minilm-l3")
# The pair reader that checks a duplicate candidate ("" or "none": no verifier, cosine thresholds only).
DEFAULT_VERIFIER_MODEL = os.environ.get("VERIFIER_MODEL", "verifier-minilm-l6")
CARD_FILE = "model.json"
TASKS = ("embedding", "sentiment", "verifier")


@dataclass(frozen=True)
class Thresholds:
    """Cosine thresholds: duplicate >= ``duplicate`` > related >= ``related`` > unrelated."""

    duplicate: float
    related: float

    def __post_init__(self) -> None:
        if not -1.0 <= self.related <= self.duplicate <= 1.0:
            raise ValueError(f"thresholds must satisfy -1 <= related <= duplicate <= 1, got {self}")

    def classify(self, similarity: float) -> str:
        if similarity >= self.duplicate:
            return "duplicate"
        if similarity >= self.related:
            return "related"
        return "unrelated"


@dataclass(frozen=True)
class ModelCard:
    name: str
    task: str
    directory: Path
    max_tokens: int
    output_dim: int
    pooling: str = "mean"
    labels: tuple[str, ...] = ()
    thresholds: Thresholds | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def model_path(self) -> Path:
        return self.directory / self.raw.get("files", {}).get("model", "model.onnx")

    @property
    def tokenizer_path(self) -> Path:
        return self.directory / self.raw.get("files", {}).get("tokenizer", "tokenizer.json")

    @classmethod
    def from_dir(cls, directory: Path) -> ModelCard:
        card_path = directory / CARD_FILE
        if not card_path.is_file():
            raise ModelNotFound(f"model card not found: {card_path}")
        try:
            raw = json.loads(card_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ModelNotFound(f"{card_path}: line {exc.lineno}: not valid JSON: {exc.msg}") from exc
        try:
            task = raw["task"]
            if task not in TASKS:
                raise ValueError(f"task must be one of {TASKS}, got {task!r}")
            thresholds = raw.get("thresholds")
            card = cls(
                name=raw.get("name", directory.name),
                task=task,
                directory=directory,
                max_tokens=int(raw["max_tokens"]),
                output_dim=int(raw["output_dim"]),
                pooling=raw.get("pooling", "mean"),
                labels=tuple(raw.get("labels", ())),
                thresholds=Thresholds(**thresholds) if thresholds else None,
                raw=raw,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelNotFound(f"{card_path}: invalid card: {exc!r}") from exc
        for path in (card.model_path, card.tokenizer_path):
            if not path.is_file():
                raise ModelNotFound(f"model {card.name!r}: file missing: {path}")
        return card


def models_dir() -> Path:
    """Where model directories live; ``EMBEDDINGS_MODELS_DIR`` points elsewhere (a Lambda layer, say)."""
    return Path(os.environ.get("EMBEDDINGS_MODELS_DIR", MODELS_DIR))


def available(task: str | None = None) -> list[str]:
    names = []
    for card_path in sorted(models_dir().glob(f"*/{CARD_FILE}")):
        raw = json.loads(card_path.read_text(encoding="utf-8"))
        if task is None or raw.get("task") == task:
            names.append(card_path.parent.name)
    return names


def load_card(name: str) -> ModelCard:
    if not name or "/" in name or "\\" in name or name.startswith("."):
        raise ModelNotFound(f"unknown model {name!r}", field="model")
    directory = models_dir() / name
    if not directory.is_dir():
        raise ModelNotFound(f"unknown model {name!r}; available: {', '.join(available()) or 'none'}", field="model")
    return ModelCard.from_dir(directory)


def write_card(directory: Path, raw: dict[str, Any]) -> None:
    (directory / CARD_FILE).write_text(json.dumps(raw, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
