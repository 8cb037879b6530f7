"""The management commands named in the README."""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.test import Client

from webapp.events.models import Event
from webapp.questions import actions
from webapp.questions.models import Flag, Question

pytestmark = pytest.mark.django_db(transaction=True)


def run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_create_event_prints_the_code_and_assigns_moderators():
    User.objects.create_user("maria", password="pw-for-tests-only")
    code = run("create_event", "Keynote", "--moderator", "maria").strip()
    event = Event.objects.get(code=code)
    assert len(code) == 6 and event.title == "Keynote"
    assert list(event.moderators.values_list("username", flat=True)) == ["maria"]
    assert run("create_event", "Town hall", "--code", "town-hall").strip() == "TOWN-HALL"


def test_create_event_creates_a_plain_moderator_and_prints_its_password():
    out = run("create_event", "Keynote", "--create-moderator", "maria", "--create-moderator", "omar").splitlines()
    event = Event.objects.get(code=out[0])
    assert sorted(event.moderators.values_list("username", flat=True)) == ["maria", "omar"]
    maria = User.objects.get(username="maria")
    assert not maria.is_staff and not maria.is_superuser
    assert out[1].startswith("moderator login: maria / ") and out[2].startswith("moderator login: omar / ")
    password = out[1].split(" / ")[1].split()[0]
    assert len(password) >= 16 and maria.check_password(password)
    assert Client().post("/accounts/login/", {"username": "maria", "password": password}).status_code == 302


def test_create_event_errors_are_clear():
    with pytest.raises(CommandError, match=r"no user named 'ghost': .* use --create-moderator ghost") as error:
        run("create_event", "Keynote", "--moderator", "ghost")
    assert "createsuperuser" not in str(error.value)
    User.objects.create_user("maria", password="pw-for-tests-only")
    with pytest.raises(CommandError, match="a user named 'maria' exists already: use --moderator maria"):
        run("create_event", "Keynote", "--create-moderator", "maria")
    with pytest.raises(CommandError, match="--create-moderator 'no spaces'"):
        run("create_event", "Keynote", "--create-moderator", "no spaces")
    assert not Event.objects.exists() and User.objects.count() == 1
    run("create_event", "A", "--code", "SAME")
    with pytest.raises(CommandError, match="code"):
        run("create_event", "B", "--code", "same")
    with pytest.raises(CommandError, match="code"):
        run("create_event", "C", "--code", "no spaces allowed")


def test_seed_demo_creates_paraphrases_that_get_flagged_and_is_idempotent():
    out = run("seed_demo")
    assert "DEMO" in out and "moderator login: demo /" in out
    event = Event.objects.get(code="DEMO")
    assert Question.objects.filter(event=event, state="processed").count() >= 10
    assert Flag.objects.filter(question__event=event, kind="duplicate").exists()
    # The demo is the first thing people see: every flag in its queue is one a moderator would keep.
    worth_a_look = {
        ("What's the timeline for rewriting the mobile app?", "What is the plan for the mobile app rewrite?"),
        ("can we get a copy of the deck afterwards", "Will the slides be shared after the talk?"),
        ("Will there be a recording of this session?", "Will the slides be shared after the talk?"),
        ("Are we going back to the office three days a week?", "Is the hybrid work policy changing next quarter?"),
    }
    flags = Flag.objects.filter(question__event=event).select_related("question", "matched")
    assert {(f.question.text, f.matched.text) for f in flags} <= worth_a_look
    # One question on stage and one answered in writing, as at an event under way.
    assert list(Question.objects.filter(event=event, now_answering=True).values_list("text", flat=True)) == [
        "Is the hybrid work policy changing next quarter?"
    ]
    answered = Question.objects.get(event=event, answered=True)
    assert answered.text == "Will there be a recording of this session?" and answered.answer.startswith("Yes")
    demo = User.objects.get(username="demo")
    assert event.is_moderator(demo) and not demo.is_staff and not demo.is_superuser
    assert Event.objects.get(code="DEMO").is_owner(demo)
    assert "password unchanged" in run("seed_demo")
    assert Event.objects.filter(code="DEMO").count() == 1


def test_the_demo_user_moderates_the_demo_event_only():
    run("seed_demo")
    other = Event.create("Board meeting", code="BOARD")
    actions.submit_question(other, "Will the slides be shared after the talk?", "a")
    client = Client()
    client.force_login(User.objects.get(username="demo"))
    assert client.get("/e/DEMO/moderate/").status_code == 200
    assert client.get("/e/DEMO/export.csv").status_code == 200
    assert client.get("/api/events/DEMO/flags").status_code == 200
    for path in ("/e/BOARD/moderate/", "/e/BOARD/dashboard/", "/e/BOARD/export.csv", "/api/events/BOARD/flags"):
        assert client.get(path).status_code == 403, path
    assert client.get("/admin/").status_code == 302  # to the admin's sign-in: no staff rights


def password_in(out: str) -> str:
    line = next(line for line in out.splitlines() if line.startswith("moderator login: demo / "))
    return line.split(" / ")[1].split()[0]


def test_seed_demo_demotes_a_staff_demo_user_from_an_earlier_run():
    demo = User.objects.create_user("demo", password="old-password", is_staff=True, is_superuser=True)
    Event.create("Platform all-hands (demo)", code="DEMO")
    out = run("seed_demo")
    demo.refresh_from_db()
    assert "the demo user is no longer staff" in out
    assert not demo.is_staff and not demo.is_superuser and demo.check_password("old-password")
    assert Event.objects.get(code="DEMO").is_moderator(demo)
    assert "no longer staff" not in run("seed_demo")


def test_seed_demo_resets_the_password(monkeypatch):
    monkeypatch.delenv("DEMO_PASSWORD", raising=False)
    Event.create("Platform all-hands (demo)", code="DEMO")
    first = password_in(run("seed_demo"))
    demo = User.objects.get(username="demo")
    assert demo.check_password(first)
    second = password_in(run("seed_demo", "--reset-password"))
    demo.refresh_from_db()
    assert second != first and demo.check_password(second)
    # DEMO_PASSWORD set after the first run is applied, and not echoed.
    monkeypatch.setenv("DEMO_PASSWORD", "chosen-later-1234")
    out = run("seed_demo")
    demo.refresh_from_db()
    assert demo.check_password("chosen-later-1234") and "chosen-later-1234" not in out
    assert "moderator login: demo / the password in DEMO_PASSWORD" in out
    assert "password unchanged" in run("seed_demo")
    run("seed_demo", "--reset-password")
    demo.refresh_from_db()
    assert demo.check_password("chosen-later-1234")


def test_export_questions_writes_csv_with_sentiment_and_flags(tmp_path):
    event = Event.create("Room", code="ROOM")
    actions.submit_question(event, "Will the slides be shared after the talk?", "a")
    actions.submit_question(event, '=HYPERLINK("http://evil")', "b")
    path = tmp_path / "out.csv"
    call_command("export_questions", "room", "--output", str(path), stderr=io.StringIO())
    rows = list(csv.DictReader(path.open(encoding="utf-8")))
    assert len(rows) == 2 and rows[0]["sentiment"] in ("negative", "neutral", "positive")
    assert rows[1]["text"].startswith("'=")  # not a formula when opened in a spreadsheet
    with pytest.raises(CommandError, match="no event"):
        call_command("export_questions", "NOPE")


def test_calibrate_thresholds_from_verdicts_writes_event_overrides(tmp_path):
    event = Event.create("Room", code="ROOM")
    moderator = User.objects.create_user("mod", password="pw-for-tests-only")
    pairs = [
        ("Will the slides be shared after the talk?", "Are you going to share the slides afterwards?", "merge"),
        ("Is the session recorded?", "Will there be a recording of this session?", "merge"),
        ("How much does the pro plan cost?", "Does the pro plan include SSO?", "dismiss"),
    ]
    for a, b, _ in pairs:
        actions.submit_question(event, a, "x")
        actions.submit_question(event, b, "y")
    flags = {f.question.text: f for f in Flag.objects.select_related("question")}
    for _, b, verdict in pairs:
        if b in flags:
            (actions.merge_flag if verdict == "merge" else actions.dismiss_flag)(flags[b], moderator)
    labelled = tmp_path / "pairs.tsv"
    labelled.write_text(
        "label\tquestion_a\tquestion_b\n"
        "related\tWhen is the exam?\tWhich chapters are on the exam?\n"
        "unrelated\tWhen is the exam?\tIs there parking nearby?\n"
        "duplicate\tWhen is the exam?\tWhat date is the exam on?\n"
        "duplicate\tIs parking free?\tDo we have to pay for parking?\n"
        "related\tIs parking free?\tWhere is the nearest car park?\n"
        "duplicate\tWill lunch be provided?\tIs there food at lunchtime?\n"
        "unrelated\tWill lunch be provided?\tWhen does the keynote start?\n"
        "related\tHow much is the Pro plan?\tHow much is the Basic plan?\n",
        encoding="utf-8",
    )
    out = run("calibrate_thresholds", str(labelled), "--event", "ROOM", "--write", "--json")
    result = json.loads(out.strip().splitlines()[-1])
    event.refresh_from_db()
    assert result["written"] is True and result["pairs"] >= 10
    assert event.duplicate_threshold == pytest.approx(result["thresholds"]["duplicate"], abs=1e-4)
    assert event.related_threshold <= event.duplicate_threshold
    # A dozen verdicts move the card's threshold by a bounded step, never to wherever one pair sits.
    card = result["model_card"]["duplicate"]
    assert abs(event.duplicate_threshold - card) <= 0.05 + 1e-9
    with pytest.raises(CommandError, match="not enough verdicts"):
        run("calibrate_thresholds", "--event", "ROOM")
    with pytest.raises(CommandError, match="--write needs --event"):
        run("calibrate_thresholds", "--write")
    bad = tmp_path / "bad.tsv"
    bad.write_text("label\tquestion_a\tquestion_b\nmaybe\ta\tb\n", encoding="utf-8")
    with pytest.raises(CommandError, match=r"bad\.tsv:2"):
        run("calibrate_thresholds", str(bad))


def test_flags_a_merge_closed_for_repeating_another_are_no_verdicts():
    from webapp.questions.management.commands.calibrate_thresholds import verdicts

    event = Event.create("Room", code="ROOM")
    moderator = User.objects.create_user("mod", password="pw-for-tests-only")
    a, b, c = (Question.objects.create(event=event, text=t, attendee="x") for t in ("A?", "B?", "C?"))
    Flag.objects.create(question=b, matched=a, kind="duplicate", similarity=0.9, status="merged", decided_by=moderator)
    Flag.objects.create(question=c, matched=a, kind="related", similarity=0.7, status="dismissed", decided_by=moderator)
    Flag.objects.create(question=c, matched=b, kind="related", similarity=0.6, status="dismissed")  # closed by a merge
    assert sorted(zip(*verdicts(event))) == [(0.7, "unrelated"), (0.9, "duplicate")]
