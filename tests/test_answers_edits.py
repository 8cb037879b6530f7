"""Answers, "now answering", and an attendee's edit or withdrawal of their own question (the API).

On the embedded defaults: eager tasks, in-process functions, the real small model.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from tests.conftest import attendee_client
from webapp.events.models import Event
from webapp.questions import index
from webapp.questions.export import write_csv
from webapp.questions.models import MAX_ANSWER_CHARS, Flag, Question
from webapp.questions.processing import process_question
from webapp.questions.similarity import find_matches

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def asker(event: Event) -> Client:
    return attendee_client()


@pytest.fixture
def mod(event: Event) -> Client:
    user = User.objects.create_user("mod", password="pw-for-tests-only")
    event.moderators.add(user)
    client = Client()
    client.force_login(user)
    return client


def call(client: Client, method: str, url: str, data=None) -> tuple[int, dict]:
    response = getattr(client, method)(url, json.dumps(data or {}), content_type="application/json")
    return response.status_code, response.json()


def ask(client: Client, text: str) -> dict:
    status, body = call(client, "post", "/api/events/ALLHANDS/questions", {"text": text})
    assert status == 201, body
    return body


def listing(client: Client) -> dict:
    return client.get("/api/events/ALLHANDS/questions").json()


def by_id(rows: list[dict], qid: int) -> dict:
    return next(q for q in rows if q["id"] == qid)


# --- answers ---------------------------------------------------------------------------------


def test_a_written_answer_reaches_attendees_and_the_export(event, asker, mod):
    qid = ask(asker, "Will the recordings be online?")["id"]
    answer = "Yes, by Friday.\r\n\r\n\r\nLinks go out by email."
    status, body = call(mod, "post", f"/api/questions/{qid}/answer", {"text": answer})
    assert status == 200 and body["answered"] is True
    seen = by_id(listing(attendee_client())["questions"], qid)
    assert seen["answer"] == "Yes, by Friday.\n\nLinks go out by email." and seen["answered_at"]
    assert Question.objects.get(pk=qid).answered_by.username == "mod"
    out = io.StringIO()
    write_csv(event, out)
    row = next(r for r in csv.DictReader(io.StringIO(out.getvalue())) if r["id"] == str(qid))
    assert row["answer"] == "Yes, by Friday.\n\nLinks go out by email." and row["answered"] == "True"
    # Marked not answered: attendees no longer see the text; the moderator keeps it.
    call(mod, "post", f"/api/questions/{qid}/moderate", {"action": "unanswer"})
    assert by_id(listing(asker)["questions"], qid)["answer"] == ""
    assert mod.get(f"/api/questions/{qid}").json()["answer"].startswith("Yes, by Friday.")


def test_only_a_moderator_of_the_event_answers_and_bad_text_is_a_400(event, asker, mod):
    qid = ask(asker, "Is there a dress code?")["id"]
    assert call(asker, "post", f"/api/questions/{qid}/answer", {"text": "No."})[0] == 403
    other = User.objects.create_user("other-mod", password="pw-for-tests-only")
    Event.create("Another event", code="ELSEWHERE").moderators.add(other)
    stranger = Client()
    stranger.force_login(other)
    assert call(stranger, "post", f"/api/questions/{qid}/answer", {"text": "No."})[0] == 403
    status, body = call(mod, "post", f"/api/questions/{qid}/answer", {"text": "x" * (MAX_ANSWER_CHARS + 1)})
    assert status == 400 and body["field"] == "text"
    status, body = call(mod, "post", f"/api/questions/{qid}/answer", {"text": ["no"]})
    assert status == 400 and body["field"] == "text"
    assert Question.objects.get(pk=qid).answered is False


# --- now answering ---------------------------------------------------------------------------


def test_one_question_at_a_time_is_now_answering(event, asker, mod):
    first = ask(asker, "What is the budget for next year?")["id"]
    second = ask(asker, "Who leads the new team?")["id"]
    assert call(mod, "post", f"/api/questions/{first}/moderate", {"action": "now"})[0] == 200
    assert listing(asker)["event"]["now_answering"] == first
    assert call(mod, "post", f"/api/questions/{second}/moderate", {"action": "now"})[0] == 200
    data = listing(asker)
    assert data["event"]["now_answering"] == second
    assert [q["id"] for q in data["questions"] if q["now_answering"]] == [second]
    assert data["questions"][0]["id"] == second  # on stage comes first
    # Answering it takes it off the stage.
    call(mod, "post", f"/api/questions/{second}/answer", {"text": "Maria does."})
    assert listing(asker)["event"]["now_answering"] is None
    assert Question.objects.filter(now_answering=True).count() == 0


def test_a_question_attendees_cannot_see_is_never_on_stage(event, asker, mod):
    qid = ask(asker, "Can I bring a guest?")["id"]
    call(mod, "post", f"/api/questions/{qid}/moderate", {"action": "now"})
    call(mod, "post", f"/api/questions/{qid}/moderate", {"action": "hide"})
    assert Question.objects.get(pk=qid).now_answering is False
    status, body = call(mod, "post", f"/api/questions/{qid}/moderate", {"action": "now"})
    assert status == 409 and "can see" in body["error"]


# --- an attendee's own changes ---------------------------------------------------------------


def test_an_edit_is_processed_again_and_flagged_by_its_new_words(event, asker):
    earlier = ask(attendee_client(), "Will the slides be shared after the talk?")["id"]
    mine = ask(asker, "Where is the nearest parking garage?")
    assert mine["editable_until"] and Flag.objects.filter(question_id=mine["id"]).count() == 0
    status, body = call(asker, "patch", f"/api/questions/{mine['id']}", {"text": "Are the slides shared afterwards?"})
    assert status == 200, body
    assert body["text"] == "Are the slides shared afterwards?" and body["edited"] is True
    stored = Question.objects.get(pk=mine["id"])
    assert stored.state == Question.State.PROCESSED and stored.edited_at is not None
    assert list(Flag.objects.filter(question=stored).values_list("matched_id", "kind")) == [(earlier, "duplicate")]
    # The index answers with the new vector: the old words no longer find it.
    vector = stored.embedding()
    assert find_matches(event, vector, exclude_id=earlier)[0].question.pk == stored.pk


def test_an_edit_replaces_open_flags_and_keeps_the_votes(event, asker):
    earlier = ask(attendee_client(), "Will the slides be shared after the talk?")["id"]
    mine = ask(asker, "Are you going to share the slides afterwards?")["id"]
    assert Flag.objects.filter(question_id=mine, status=Flag.Status.OPEN).count() == 1
    call(attendee_client(), "post", f"/api/questions/{mine}/vote")
    assert call(asker, "patch", f"/api/questions/{mine}", {"text": "Where is the nearest parking garage?"})[0] == 200
    assert not Flag.objects.filter(question_id=mine, matched_id=earlier).exists()
    assert Question.objects.get(pk=mine).vote_count == 1


def test_only_the_asker_changes_a_question_and_only_for_a_while(event, asker, settings):
    qid = ask(asker, "Is lunch included?")["id"]
    other = attendee_client()
    assert call(other, "patch", f"/api/questions/{qid}", {"text": "Hijacked"})[0] == 403
    assert call(other, "delete", f"/api/questions/{qid}")[0] == 403
    assert call(Client(), "delete", f"/api/questions/{qid}")[0] == 404  # not joined: not even seen
    status, body = call(asker, "patch", f"/api/questions/{qid}", {"text": "   "})
    assert status == 400 and body["field"] == "text"
    Question.objects.filter(pk=qid).update(created_at=timezone.now() - timedelta(seconds=301))
    status, body = call(asker, "patch", f"/api/questions/{qid}", {"text": "Is dinner included?"})
    assert status == 409 and "5 minutes after asking" in body["error"]
    assert by_id(listing(asker)["questions"], qid)["editable_until"] is None
    assert Question.objects.get(pk=qid).text == "Is lunch included?"


def test_an_answered_or_merged_into_question_no_longer_changes(event, asker, mod):
    answered = ask(asker, "Is lunch included?")["id"]
    call(mod, "post", f"/api/questions/{answered}/moderate", {"action": "answer"})
    status, body = call(asker, "delete", f"/api/questions/{answered}")
    assert status == 409 and "answered" in body["error"]
    target = ask(asker, "Will the slides be shared after the talk?")["id"]
    dup = ask(attendee_client(), "Are you going to share the slides afterwards?")["id"]
    flag = Flag.objects.get(question_id=dup, matched_id=target)
    assert call(mod, "post", f"/api/flags/{flag.pk}/merge")[0] == 200
    status, body = call(asker, "patch", f"/api/questions/{target}", {"text": "Something else entirely?"})
    assert status == 409 and "merged into this one" in body["error"]


def test_an_edit_under_premoderation_waits_for_approval_again(event, asker, mod):
    event.premoderation = True
    event.save()
    qid = ask(asker, "Is lunch included?")["id"]
    call(mod, "post", f"/api/questions/{qid}/moderate", {"action": "approve"})
    assert call(asker, "patch", f"/api/questions/{qid}", {"text": "Buy my product at spam.example"})[0] == 200
    assert Question.objects.get(pk=qid).status == Question.Status.AWAITING_APPROVAL
    assert qid not in [q["id"] for q in listing(attendee_client())["questions"]]


def test_a_withdrawn_question_leaves_every_list_and_match_but_is_kept(event, asker):
    earlier = ask(attendee_client(), "Will the slides be shared after the talk?")["id"]
    mine = ask(asker, "Are you going to share the slides afterwards?")["id"]
    status, body = call(asker, "delete", f"/api/questions/{mine}")
    assert status == 200 and body["status"] == "withdrawn"
    assert mine not in [q["id"] for q in listing(attendee_client())["questions"]]
    assert [q["status"] for q in listing(asker)["mine"]] == ["withdrawn"]
    assert Flag.objects.get(question_id=mine).status == Flag.Status.DISMISSED
    # A later paraphrase matches the question still standing, never the withdrawn one.
    later = ask(attendee_client(), "Do we get the slides after the session?")["id"]
    assert list(Flag.objects.filter(question_id=later).values_list("matched_id", flat=True)) == [earlier]
    assert Question.objects.get(pk=mine).text == "Are you going to share the slides afterwards?"
    assert call(attendee_client(), "post", f"/api/questions/{mine}/vote")[0] == 404


def test_a_worker_busy_with_the_old_text_drops_its_result(event, asker, monkeypatch):
    qid = ask(asker, "Where is the nearest parking garage?")["id"]
    Question.objects.filter(pk=qid).update(state=Question.State.PENDING, vector=None)
    real_pre_verify = __import__("webapp.questions.processing", fromlist=["pre_verify"]).pre_verify

    def edit_meanwhile(event, text, vector, exclude_id):
        # The asker's edit lands between the functions' call and the final write.
        Question.objects.filter(pk=qid).update(text="Is there a bike rack?")
        return real_pre_verify(event, text, vector, exclude_id)

    monkeypatch.setattr("webapp.questions.processing.pre_verify", edit_meanwhile)
    process_question(qid)
    assert Question.objects.get(pk=qid).vector is None  # the old text's vector was not stored


def test_a_cached_index_sees_an_edit_made_elsewhere(event, asker):
    """Another process (a worker) edits and re-embeds a question while this one is not looking:
    this process's cached index must not keep the old vector, though the count and the highest id
    are what they were."""
    from webapp.core.inference import embedding_model, functions
    from webapp.questions.models import vector_bytes

    qid = ask(asker, "Where is the nearest parking garage?")["id"]
    old = Question.objects.get(pk=qid).embedding()
    assert index.event_index(event.pk, embedding_model()).search(old, 1)[0][0] == qid
    new = functions().embed(["Will there be vegetarian food?"])[0]
    assert float(old @ new) < 0.9
    Question.objects.filter(pk=qid).update(
        text="Will there be vegetarian food?", vector=vector_bytes(new), edited_at=timezone.now()
    )
    hits = dict(index.event_index(event.pk, embedding_model()).search(old, 1))
    assert hits[qid] == pytest.approx(float(old @ new), abs=1e-4)
