"""Flag quality on whole events: `manage.py replay_events`, its scoring, and the flag policy."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command

from embeddings.cards import Thresholds
from training import corpora
from webapp.events.models import Event
from webapp.questions import replay
from webapp.questions.management.commands.calibrate_thresholds import lowest_precise_threshold
from webapp.questions.replay import Outcome, Posted
from webapp.questions.similarity import choose_flags

ROOT = Path(__file__).resolve().parent.parent
STREAMS = ROOT / "training" / "data" / "event_pairs" / "streams"
HEADER = "event\torder\tcluster\ttopic\ttext"


def posted(cluster: str, topic: str, text: str = "q", order: int = 1) -> Posted:
    return Posted("talk", order, cluster, topic, text)


def test_the_policy_raises_one_duplicate_flag_and_no_related_flag_beside_it():
    t = Thresholds(duplicate=0.7, related=0.5)
    assert choose_flags([("a", 0.9), ("b", 0.8), ("c", 0.6)], t) == [("duplicate", "a", 0.9)]
    assert choose_flags([("a", 0.65), ("b", 0.6)], t) == [("related", "a", 0.65)]
    assert choose_flags([("a", 0.45)], t) == []
    off = Thresholds(duplicate=0.7, related=0.7)  # related flags switched off
    assert choose_flags([("a", 0.69)], off) == []


def test_score_counts_right_flags_by_cluster_and_topic():
    slides, deck, video, parking = (
        posted("c1", "materials"),
        posted("c1", "materials"),
        posted("c2", "materials"),
        posted("c3", "venue"),
    )
    outcomes = [
        Outcome(slides, False, False, [], []),
        Outcome(deck, True, True, [("duplicate", slides, 0.9)], [(slides, 0.9)]),  # right
        Outcome(video, False, True, [("duplicate", slides, 0.8)], [(slides, 0.8)]),  # wrong: related
        Outcome(parking, False, False, [("related", video, 0.5)], [(video, 0.5)]),  # wrong: other topic
    ]
    s = replay.score(outcomes)
    assert s["duplicate_flags"] == 2 and s["duplicate_precision"] == 0.5
    assert s["duplicate_recall"] == 1.0 and s["questions_with_earlier_duplicate"] == 1
    assert s["related_precision"] == 0.0 and s["flags_per_question"] == 0.75
    assert s["first_flag_right"] == pytest.approx(1 / 3, abs=1e-3)
    # At a duplicate threshold of 0.85 the related-trap flag turns into a related flag, which is right.
    again = replay.rescore(outcomes, replay.Point(Thresholds(duplicate=0.85, related=0.45)))
    assert again["duplicate_precision"] == 1.0 and again["related_flags"] == 2 and again["related_precision"] == 0.5


def test_calibrate_picks_the_lowest_threshold_that_keeps_the_precision_target(monkeypatch):
    monkeypatch.setattr(replay, "MIN_FLAGS_FOR_PRECISION", 1)
    first = posted("c0", "t0")
    outcomes = [Outcome(first, False, False, [], [])]
    # Twenty paraphrases at 0.9 to 0.71, then related traps (same topic, another cluster) below them.
    for i in range(20):
        outcomes.append(Outcome(posted("c0", "t0"), True, True, [], [(first, round(0.9 - 0.01 * i, 2))]))
    for s in (0.69, 0.68, 0.67, 0.6, 0.55, 0.5):
        outcomes.append(Outcome(posted(f"x{s}", "t0"), False, True, [], [(first, s)]))
    chosen = replay.calibrate(outcomes)
    # Down to 0.67 the flags are 20 of 23 right (0.87); the trap at 0.6 would make it 20 of 24 (0.83).
    assert 0.6 < chosen["duplicate"] <= 0.67
    # Below it the traps make right related flags (same topic): related flags stay on, down to the floor.
    assert chosen["related_flags"] is True and chosen["related"] == pytest.approx(0.3)


def test_lowest_precise_threshold_on_verdicts():
    sims = [0.95, 0.9, 0.8, 0.7, 0.6]
    assert lowest_precise_threshold(sims, [True, True, True, False, False], 0.85) == 0.8
    assert lowest_precise_threshold(sims, [False, True, True, True, True], 0.75) == 0.6
    assert lowest_precise_threshold(sims, [False, False, True, False, False], 0.85) is None


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (["talk\t1\tc1\tt\tWill the slides be shared?", "talk\t1\tc2\tt\tIs it recorded?"], ":3: order 1"),
        (["talk\tfirst\tc1\tt\tWill the slides be shared?"], ":2: order must be a positive whole number"),
        (["talk\t1\tc1\tt"], ":2: 4 fields, expected 5"),
        (["talk\t1\tc1\tt\t" + "x" * 301], ":2: text must be 1 to 300"),
        (["talk\t1\tc1\tt1\tWill the slides be shared?", "talk\t2\tc1\tt2\tdeck?"], ":3: cluster 'c1'"),
    ],
)
def test_a_malformed_stream_names_the_file_and_line(tmp_path: Path, rows: list[str], message: str):
    path = tmp_path / "bad.tsv"
    path.write_text("\n".join([HEADER, *rows]) + "\n", encoding="utf-8")
    with pytest.raises(replay.StreamError, match=f"bad.tsv{message}"):
        replay.read_streams(path)


def test_the_command_exits_2_with_file_and_line(tmp_path: Path):
    path = tmp_path / "streams.tsv"
    path.write_text("event\torder\ttext\nx\t1\thello there\n", encoding="utf-8")
    out = subprocess.run(
        [sys.executable, "manage.py", "replay_events", str(path)], cwd=ROOT, capture_output=True, text=True
    )
    assert out.returncode == 2
    assert (
        out.stderr.strip()
        == f"error: {path}:1: the header must be event / order / cluster / topic / text (tab-separated)"
    )
    assert "Traceback" not in out.stderr
    good = tmp_path / "good.tsv"
    good.write_text(HEADER + "\nx\t1\tc\tt\thello there\n", encoding="utf-8")
    out = subprocess.run(
        [sys.executable, "manage.py", "replay_events", str(good), "--thresholds", "0.5,0.9"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 2 and out.stderr.startswith("error: --thresholds: two cosines DUP,REL")


@pytest.mark.django_db(transaction=True)
def test_replay_posts_each_event_through_the_app_and_scores_the_flags(tmp_path: Path):
    path = tmp_path / "streams.tsv"
    rows = [
        "allhands\t1\tslides\tmaterials\tWill the slides be shared after the talk?",
        "allhands\t2\tparking\tvenue\tWhere can I park my car tonight?",
        "allhands\t3\tslides\tmaterials\tWill the slides be shared after this talk?",
        "lecture\t1\texam\texam\tIs the final exam open book?",
        "lecture\t2\tlab\tlabs\tWhen do the lab sessions start?",
    ]
    path.write_text("\n".join([HEADER, *rows]) + "\n", encoding="utf-8")
    before = Event.objects.count()
    out = io.StringIO()
    call_command("replay_events", str(path), "--json", "--curve", stdout=out)
    result = json.loads(out.getvalue())
    overall = result["overall"]
    assert set(result["events"]) == {"allhands", "lecture"}
    assert overall["questions"] == 5 and overall["questions_with_earlier_duplicate"] == 1
    # The near-verbatim repeat is flagged as a duplicate of the first question, and nothing else is.
    assert overall["duplicate_flags"] == 1 and overall["duplicate_precision"] == 1.0
    assert overall["duplicate_recall"] == 1.0 and overall["first_flag_right"] == 1.0
    assert result["events"]["lecture"]["duplicate_flags"] == 0
    thresholds = [p["threshold"] for p in result["curve"]]
    assert thresholds == sorted(thresholds) and result["curve"][-1]["duplicate_flags"] <= 1
    assert Event.objects.count() == before  # the throw-away events are gone
    # The policy shipped before (top three above 0.32) on the same questions flags more of them.
    assert result["before"]["questions"] == 5
    assert result["before"]["flags_per_question"] >= overall["flags_per_question"]


@pytest.mark.django_db(transaction=True)
def test_verdicts_on_the_first_half_set_the_event_thresholds_for_the_second(tmp_path: Path):
    path = tmp_path / "streams.tsv"
    texts = [
        ("slides", "materials", "Will the slides be shared after the talk?"),
        ("slides", "materials", "Will the slides be shared after this talk?"),
        ("video", "materials", "Will the recording of the talk be shared?"),
        ("slides", "materials", "Are you going to share the slides after the talk?"),
    ]
    path.write_text(
        "\n".join([HEADER] + [f"talk\t{i}\t{c}\t{t}\t{x}" for i, (c, t, x) in enumerate(texts, 1)]) + "\n",
        encoding="utf-8",
    )
    out = io.StringIO()
    call_command("replay_events", str(path), "--json", "--verdicts", stdout=out)
    verdicts = json.loads(out.getvalue())["verdicts"]
    assert verdicts["second_half_with"]["questions"] == verdicts["second_half_without"]["questions"] == 2


def test_streams_hold_every_question_of_their_split_once_and_keep_dev_and_test_apart():
    build = corpora.load_pool_builder()
    events = build.load_all_events()
    build.build(events)
    for split in ("dev", "test"):
        streams = replay.read_streams(STREAMS / f"{split}.tsv")
        expected = {e.id: sorted(t for c in e.clusters for t in c.texts) for e in events if e.split == split}
        assert {name: sorted(p.text for p in qs) for name, qs in streams.items()} == expected
    dev, test = (set(replay.read_streams(STREAMS / f"{s}.tsv")) for s in ("dev", "test"))
    assert dev and test and not dev & test


def test_the_flag_quality_report_reads_the_curve_and_renders_a_table(tmp_path: Path):
    from benchmarks.flag_quality import precision_at_recall
    from training.report import flag_quality_lines

    curve = [
        {"threshold": 0.5, "duplicate_precision": 0.6, "duplicate_recall": 0.75, "duplicate_flags": 90},
        {"threshold": 0.6, "duplicate_precision": 0.7, "duplicate_recall": 0.65, "duplicate_flags": 70},
        {"threshold": 0.7, "duplicate_precision": 0.9, "duplicate_recall": 0.4, "duplicate_flags": 40},
    ]
    assert precision_at_recall(curve, 0.6) == 0.7 and precision_at_recall(curve, 0.7) == 0.6
    assert precision_at_recall(curve, 0.8) is None
    overall = {
        "duplicate_precision": 0.9,
        "duplicate_recall": 0.4,
        "related_precision": None,
        "flags_per_question": 0.3,
        "first_flag_right": 0.9,
    }
    row = {
        "model": "m",
        "thresholds": {"duplicate": 0.7, "related": 0.7},
        "verifier": None,
        "overall": overall,
        "precision_at_recall_0.6": 0.7,
        "precision_at_recall_0.7": 0.6,
        "curve": curve,
    }
    path = tmp_path / "flag_quality.json"
    path.write_text(json.dumps({"split": "test", "streams": "s/test.tsv", "models": [row]}), encoding="utf-8")
    table = [line for line in flag_quality_lines(path) if line.startswith("| `m`")]
    assert table == ["| `m` | none | cos >= 0.7 / rel >= 0.7 | 0.900 | 0.400 | n/a | 0.30 | 0.900 | 0.700 | 0.600 |"]
