from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand
from django.test.utils import override_settings

from embeddings.cards import DEFAULT_EMBEDDING_MODEL, Thresholds, load_card, write_card
from embeddings.errors import ModelNotFound
from webapp import celery_app
from webapp.core import inference
from webapp.questions import replay, similarity


class Command(BaseCommand):
    help = (
        "Replay labelled streams of questions (event, order, cluster, topic, text) through the app in posting "
        "order, each event in a fresh throw-away event, and score the flags a moderator would see."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("file", type=Path, help="TSV: event<TAB>order<TAB>cluster<TAB>topic<TAB>text")
        parser.add_argument("--model", help="embedding model (default: the app's)")
        parser.add_argument(
            "--verifier", help="verifier model, or none for cosine thresholds only (default: the card's)"
        )
        parser.add_argument(
            "--verdicts",
            action="store_true",
            help=(
                "a moderator decides the flags of each event's first half; the event's thresholds are calibrated "
                "from those verdicts; figures on the second half, beside the same half without verdicts"
            ),
        )
        parser.add_argument(
            "--thresholds",
            metavar="DUP,REL",
            help="replay at these cosine thresholds instead of the card's (a model without any: 1,1 with --calibrate)",
        )
        parser.add_argument("--curve", action="store_true", help="duplicate precision/recall at each threshold")
        parser.add_argument(
            "--calibrate",
            action="store_true",
            help=(
                "the thresholds for the moderator's cost (duplicate precision >= 0.85, related >= 0.70); "
                "use the dev streams"
            ),
        )
        parser.add_argument("--write", action="store_true", help="with --calibrate: store them in the model's card")
        parser.add_argument("--json", action="store_true", dest="as_json")

    def handle(
        self,
        file: Path,
        model: str | None,
        verifier: str | None,
        thresholds: str | None,
        verdicts: bool,
        curve: bool,
        calibrate: bool,
        write: bool,
        as_json: bool,
        **options,
    ) -> None:
        try:
            streams = replay.read_streams(file)
            at = parse_thresholds(thresholds)
            card = load_card(model or load_card_name())
            if card.thresholds is None and at is None:
                raise ValueError(f"model {card.name!r} has no thresholds in its card: pass --thresholds DUP,REL")
        except (replay.StreamError, ModelNotFound, ValueError) as exc:
            self.stderr.write(f"error: {exc}")
            sys.exit(2)
        with embedded(model, verifier):
            result = run(streams, verdicts, curve, calibrate, at)
            result["file"], result["model"] = str(file), model or load_card_name()
            if calibrate and write:
                write_thresholds(result["model"], result["calibrated"], file)
        self.stdout.write(json.dumps(result) if as_json else summary(result))


@contextmanager
def embedded(model: str | None, verifier: str | None):
    """Processing runs inline, in this process, with ``model`` and ``verifier`` if given."""
    eager = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    # Each question is processed before the next is posted, as the replay's order requires.
    overrides: dict[str, object] = {"QUESTION_INLINE_WAIT_S": 600}
    if model:
        overrides["EMBEDDING_MODEL"] = model
    if verifier:
        overrides["VERIFIER_MODEL"] = verifier
    try:
        with override_settings(**overrides):
            clear_caches()
            yield
    finally:
        celery_app.conf.task_always_eager = eager
        clear_caches()


def clear_caches() -> None:
    for cached in (inference.functions, inference.model_thresholds, inference.verifier):
        cached.cache_clear()


def load_card_name() -> str:
    return settings.EMBEDDING_MODEL or DEFAULT_EMBEDDING_MODEL


def parse_thresholds(value: str | None) -> Thresholds | None:
    if value is None:
        return None
    try:
        duplicate, related = (float(v) for v in value.split(","))
        return Thresholds(duplicate=duplicate, related=related)
    except ValueError as exc:
        raise ValueError(
            f"--thresholds: two cosines DUP,REL with -1 <= REL <= DUP <= 1, got {value!r} ({exc})"
        ) from None


def run(
    streams: dict[str, list[replay.Posted]], verdicts: bool, curve: bool, calibrate: bool, at: Thresholds | None
) -> dict[str, Any]:
    point = replay.point_in_force(at)
    replays = [replay.replay_event(name, stream, at=at) for name, stream in streams.items()]
    outcomes = [o for r in replays for o in r.outcomes]
    check = inference.verifier()
    result: dict[str, Any] = {
        "thresholds": {"duplicate": point.thresholds.duplicate, "related": point.thresholds.related},
        "verifier": {"model": check.model, "gate": check.gate, "duplicate": check.duplicate, "veto": check.veto}
        if check
        else None,
        "events": {r.event: replay.score(r.outcomes) for r in replays},
        "overall": replay.score(outcomes),
    }
    if verdicts:
        result["verdicts"] = verdict_comparison(streams, replays, at)
    # The same questions under the policy and thresholds shipped before the replay chose them.
    result["before"] = replay.rescore(outcomes, replay.Point(replay.BEFORE), policy=replay.flags_before)
    if curve:
        result["curve"] = replay.curve(outcomes, point)
    if calibrate:
        result["calibrated"] = replay.calibrate(outcomes, check)
    return result


def verdict_comparison(
    streams: dict[str, list[replay.Posted]], replays: list[replay.Replay], at: Thresholds | None
) -> dict[str, Any]:
    """The second half of every event, with and without a moderator's verdicts on the first half."""
    with_verdicts, without = [], []
    for r in replays:
        half = len(streams[r.event]) // 2
        decided = replay.replay_event(r.event, streams[r.event], verdicts_until=half, at=at)
        with_verdicts += decided.outcomes[half:]
        without += r.outcomes[half:]
    return {"second_half_without": replay.score(without), "second_half_with": replay.score(with_verdicts)}


def write_thresholds(model: str, calibrated: dict[str, Any], file: Path) -> None:
    card = load_card(model)
    if calibrated["duplicate"] is None:
        raise SystemExit(f"error: no duplicate threshold reaches precision {similarity.DUPLICATE_PRECISION_TARGET}")
    raw = dict(card.raw)
    raw["thresholds"] = {"duplicate": calibrated["duplicate"], "related": calibrated["related"]}
    check = inference.verifier() if calibrated.get("verifier") else None
    if check is not None:  # the verifier that was in force during the replay decides from its gate up
        raw["verifier"] = {"model": check.model} | calibrated["verifier"]
    else:
        raw.pop("verifier", None)
    raw["calibration"] = {
        "method": "manage.py replay_events --calibrate: whole events replayed in posting order through the app; "
        "the lowest duplicate threshold from which duplicate-flag precision stays >= "
        f"{similarity.DUPLICATE_PRECISION_TARGET}, "
        f"then the lowest related threshold whose related flags stay >= {similarity.RELATED_PRECISION_TARGET} "
        "(related = duplicate: no related flags)",
        "streams": file.name if file.parent.name != "streams" else f"event_pairs/streams/{file.name}",
        "related_flags": calibrated["related_flags"],
        "figures": calibrated["figures"],
        "date": date.today().isoformat(),
    }
    write_card(card.directory, raw)


def summary(result: dict[str, Any]) -> str:
    lines = [
        f"{result['file']} on {result['model']} at duplicate >= {result['thresholds']['duplicate']}, "
        f"related >= {result['thresholds']['related']}"
    ]
    rows = [*list(result["events"].items()), ("overall", result["overall"])]
    lines.append(f"{'event':40} {'qs':>4} {'dupP':>6} {'dupR':>6} {'relP':>6} {'f/q':>6} {'first':>6}")
    for name, s in rows:
        lines.append(
            f"{name[:40]:40} {s['questions']:>4} {fmt(s['duplicate_precision'])} {fmt(s['duplicate_recall'])} "
            f"{fmt(s['related_precision'])} {fmt(s['flags_per_question'])} {fmt(s['first_flag_right'])}"
        )
    if "calibrated" in result:
        lines.append(f"calibrated: {result['calibrated']}")
    if "verdicts" in result:
        for key, s in result["verdicts"].items():
            lines.append(f"{key}: {json.dumps(s)}")
    return "\n".join(lines)


def fmt(value: float | None) -> str:
    return f"{value:>6.3f}" if value is not None else f"{'-':>6}"
