"""What processing flags a question with: one flag at most, and the verifier deciding on duplicates."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from embeddings.cards import MODELS_DIR, available
from webapp.core import inference
from webapp.events.models import Event
from webapp.questions import actions
from webapp.questions.models import Flag

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif("verifier-minilm-l6" not in available("verifier"), reason="verifier-minilm-l6 is not shipped"),
]


@pytest.fixture
def models_with(tmp_path: Path, monkeypatch):
    """The shipped models, with minilm-l6's operating point replaced by ``point`` (its card only)."""

    def use(point: dict) -> None:
        for model in MODELS_DIR.iterdir():
            if model.name != "minilm-l6":
                (tmp_path / model.name).symlink_to(model)
        shutil.copytree(MODELS_DIR / "minilm-l6", tmp_path / "minilm-l6", symlinks=True)
        card = json.loads((tmp_path / "minilm-l6" / "model.json").read_text(encoding="utf-8"))
        (tmp_path / "minilm-l6" / "model.json").write_text(json.dumps(card | point), encoding="utf-8")
        monkeypatch.setenv("EMBEDDINGS_MODELS_DIR", str(tmp_path))
        for cached in (inference.functions, inference.model_thresholds, inference.verifier):
            cached.cache_clear()

    yield use
    for cached in (inference.functions, inference.model_thresholds, inference.verifier):
        cached.cache_clear()


def ask(event: Event, *texts: str) -> list[list[tuple[str, str]]]:
    """Post the texts in order; each question's flags as (kind, matched text)."""
    flags = []
    for i, text in enumerate(texts):
        question = actions.submit_question(event, text, attendee=f"a{i}")
        flags.append([(f.kind, f.matched.text) for f in Flag.objects.filter(question=question)])
    return flags


def test_the_verifier_finds_a_paraphrase_the_cosine_misses_and_vetoes_other_numbers(models_with):
    models_with(
        {
            "thresholds": {"duplicate": 0.72, "related": 0.6},
            "verifier": {"model": "verifier-minilm-l6", "gate": 0.4, "duplicate": 0.64, "veto": True},
        }
    )
    event = Event.create("Course Q&A", code="COURSE")
    recorded, video, hw7, hw8 = ask(
        event,
        "Is the session being recorded?",
        "will there be a video of this talk on youtube later",  # cosine 0.69: below 0.72
        "When is homework 7 due?",
        "When is homework 8 due?",  # cosine 0.94, and the reader says yes: but other numbers
    )
    assert recorded == [] and hw7 == []
    assert video == [("duplicate", "Is the session being recorded?")]
    assert hw8 == [("related", "When is homework 7 due?")]


def test_without_a_verifier_the_cosine_decides_and_a_question_gets_one_flag(models_with):
    models_with({"thresholds": {"duplicate": 0.72, "related": 0.6}, "verifier": None})
    event = Event.create("Course Q&A", code="COURSE")
    *_, video, hw8 = ask(
        event,
        "Is the session being recorded?",
        "When is homework 7 due?",
        "Will the talk be recorded?",
        "will there be a video of this talk on youtube later",
        "When is homework 8 due?",
    )
    assert len(video) == 1 and video[0][0] in ("duplicate", "related")
    assert hw8 == [("duplicate", "When is homework 7 due?")]  # the cosine cannot tell 7 from 8
