"""Writes that touch several rows: plain functions, each one transaction."""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import partial

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from webapp.events.models import Event
from webapp.questions import lifecycle, live
from webapp.questions.models import Flag, Question, Vote


class ActionError(Exception):
    """A request the current state does not allow (a closed event, a merged question...)."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


def submit_question(event: Event, text: str, attendee: str, author_name: str = "") -> Question:
    """Store first, process after commit: the question is kept even when the functions are down.

    A broker that is down costs the attendee nothing: the send is logged, and the sweeper sends
    the stored question later (webapp/questions/recovery.py).
    """
    from webapp.questions.tasks import enqueue

    if not event.is_open:
        raise ActionError("this event is closed to new questions")
    status = Question.Status.AWAITING_APPROVAL if event.premoderation else Question.Status.VISIBLE
    with transaction.atomic():
        question = Question.objects.create(
            event=event, text=text, attendee=attendee, author_name=author_name, status=status
        )
        live.changed(event.code)
        transaction.on_commit(partial(enqueue, question.pk))
    return question


def retry_processing(question: Question) -> None:
    from webapp.questions.tasks import enqueue

    with transaction.atomic():
        if lifecycle.retried(question):
            transaction.on_commit(partial(enqueue, question.pk))


def vote(question: Question, attendee: str) -> bool:
    """One vote per attendee per question; True when this call added it."""
    if not question.event.is_open:
        raise ActionError("this event is closed")
    if question.status != Question.Status.VISIBLE:
        raise ActionError("only visible questions take votes")
    try:
        with transaction.atomic():
            Vote.objects.create(question=question, attendee=attendee)
            Question.objects.filter(pk=question.pk).update(vote_count=F("vote_count") + 1)
            live.voted(question.event.code)
    except IntegrityError:
        return False
    return True


def _recount(question_id: int) -> None:
    Question.objects.filter(pk=question_id).update(vote_count=Vote.objects.filter(question_id=question_id).count())


def merge(duplicate: Question, original: Question, moderator) -> None:
    """Hide ``duplicate`` behind ``original``: its votes move over, its asker can follow the link.

    The other open flags that name ``duplicate`` name the question it joined from then on
    (``_repoint_flags``).
    """
    if duplicate.pk == original.pk or duplicate.event_id != original.event_id:
        raise ActionError("a question merges into another question of the same event")
    code = duplicate.event.code
    requested = original.pk
    with transaction.atomic():
        live.changed(code)
        # Race: a vote arriving during the merge must not be lost or counted twice; lock both rows.
        locked = Question.objects.select_for_update().in_bulk([duplicate.pk, original.pk])
        duplicate, original = locked[duplicate.pk], locked[original.pk]
        if original.status == Question.Status.MERGED and original.merged_into_id:
            original = Question.objects.select_for_update().get(pk=original.merged_into_id)
        already = set(Vote.objects.filter(question=original).values_list("attendee", flat=True))
        Vote.objects.filter(question=duplicate).exclude(attendee__in=already).update(question=original)
        Vote.objects.filter(question=duplicate).delete()
        Question.objects.filter(merged_into=duplicate).update(merged_into=original)
        duplicate.status = Question.Status.MERGED
        duplicate.merged_into = original
        duplicate.pinned = duplicate.now_answering = False
        duplicate.save(update_fields=["status", "merged_into", "pinned", "now_answering"])
        _recount(original.pk)
        _recount(duplicate.pk)
        now = timezone.now()
        Flag.objects.filter(
            question=duplicate, matched_id__in={requested, original.pk}, status=Flag.Status.OPEN
        ).update(status=Flag.Status.MERGED, decided_by=moderator, decided_at=now)
        _repoint_flags(duplicate, original, moderator, now)


def _repoint_flags(duplicate: Question, original: Question, moderator, now) -> None:
    """The open flags naming ``duplicate`` (either side) name ``original`` instead.

    One that would pair ``original`` with itself was carried out by this merge: closed as merged.
    One whose new pair (either way round) has a flag already is closed as dismissed, without a
    moderator: the remaining flag stands for both.
    """
    touching = Flag.objects.filter(Q(question=duplicate) | Q(matched=duplicate), status=Flag.Status.OPEN)
    for flag in touching.order_by("-similarity", "pk"):
        question_id = original.pk if flag.question_id == duplicate.pk else flag.question_id
        matched_id = original.pk if flag.matched_id == duplicate.pk else flag.matched_id
        open_flag = Flag.objects.filter(pk=flag.pk, status=Flag.Status.OPEN)
        if question_id == matched_id:
            open_flag.update(status=Flag.Status.MERGED, decided_by=moderator, decided_at=now)
            continue
        pair = Q(question_id=question_id, matched_id=matched_id) | Q(question_id=matched_id, matched_id=question_id)
        if not Flag.objects.filter(pair).exists():
            try:
                # Race: processing may raise a flag on the same pair meanwhile (one flag per pair).
                with transaction.atomic():
                    open_flag.update(question_id=question_id, matched_id=matched_id)
                continue
            except IntegrityError:
                pass
        open_flag.update(status=Flag.Status.DISMISSED, decided_by=None, decided_at=now)


def merge_flag(flag: Flag, moderator) -> None:
    with transaction.atomic():
        # Race: two moderators merging the same flag; the second finds it decided.
        flag = Flag.objects.select_for_update(of=("self",)).select_related("question__event", "matched").get(pk=flag.pk)
        if flag.status != Flag.Status.OPEN:
            raise ActionError(f"this flag is already {flag.status}")
        merge(flag.question, flag.matched, moderator)
        Flag.objects.filter(pk=flag.pk).update(
            status=Flag.Status.MERGED, decided_by=moderator, decided_at=timezone.now()
        )
        live.changed(flag.question.event.code)


def dismiss_flag(flag: Flag, moderator) -> None:
    """Kept as "not a duplicate": the verdicts calibrate the thresholds later."""
    with transaction.atomic():
        updated = Flag.objects.filter(pk=flag.pk, status=Flag.Status.OPEN).update(
            status=Flag.Status.DISMISSED, decided_by=moderator, decided_at=timezone.now()
        )
        if not updated:
            raise ActionError("this flag is already decided")
        live.changed(flag.question.event.code)


MAX_BULK_FLAGS = 500


def dismiss_flags(event: Event, ids: list[int], moderator) -> list[int]:
    """Dismiss the open flags of ``event`` among ``ids``; returns the ids dismissed.

    Ids of another event's flags, unknown or already decided ones are left alone.
    """
    with transaction.atomic():
        # Race: a flag merged or dismissed by another moderator meanwhile keeps that verdict.
        rows = Flag.objects.select_for_update(of=("self",)).filter(
            pk__in=ids, question__event=event, status=Flag.Status.OPEN
        )
        dismissed = sorted(f.pk for f in rows.only("pk"))
        if dismissed:
            Flag.objects.filter(pk__in=dismissed, status=Flag.Status.OPEN).update(
                status=Flag.Status.DISMISSED, decided_by=moderator, decided_at=timezone.now()
            )
            live.changed(event.code)
    return dismissed


MODERATION_ACTIONS = ("approve", "hide", "show", "answer", "unanswer", "now", "not_now", "pin", "unpin", "retry")


def moderate(question: Question, action: str, moderator=None) -> None:
    if action not in MODERATION_ACTIONS:
        raise ActionError(f"unknown action; one of {', '.join(MODERATION_ACTIONS)}", field="action")
    if question.status in (Question.Status.MERGED, Question.Status.WITHDRAWN) and action != "retry":
        raise ActionError(f"this question was {question.status}")
    if action == "retry":
        if question.state != Question.State.FAILED:
            raise ActionError("only a question whose processing failed can be retried")
        retry_processing(question)
        return
    if action == "now":
        now_answering(question)
        return
    changes = {
        "approve": {"status": Question.Status.VISIBLE},
        "show": {"status": Question.Status.VISIBLE},
        "hide": {"status": Question.Status.HIDDEN, "pinned": False, "now_answering": False},
        "answer": _answered(moderator),
        "unanswer": {"answered": False, "answered_at": None},
        "not_now": {"now_answering": False},
        "pin": {"pinned": True},
        "unpin": {"pinned": False},
    }[action]
    Question.objects.filter(pk=question.pk).update(**changes)
    live.changed(question.event.code)


def _answered(moderator) -> dict:
    """What marking a question answered writes: it leaves the stage and the pins."""
    return {
        "answered": True,
        "answered_at": timezone.now(),
        "answered_by": moderator if moderator is not None and moderator.is_authenticated else None,
        "pinned": False,
        "now_answering": False,
    }


def now_answering(question: Question) -> None:
    """Put ``question`` on stage: shown as "now answering" on every page, one per event at a time."""
    if question.status != Question.Status.VISIBLE:
        raise ActionError("only a question attendees can see can be on stage")
    with transaction.atomic():
        # Race: two moderators choosing at once; the event's row orders them (the last one wins),
        # and the partial unique constraint keeps it to one whatever happens.
        Event.objects.select_for_update().filter(pk=question.event_id).first()
        Question.objects.filter(event_id=question.event_id, now_answering=True).exclude(pk=question.pk).update(
            now_answering=False
        )
        Question.objects.filter(pk=question.pk).update(now_answering=True, answered=False, answered_at=None)
        live.changed(question.event.code)


def write_answer(question: Question, text: str, moderator) -> None:
    """A written answer, shown under the question to attendees and in the export; it marks the
    question answered. An empty ``text`` removes the written answer (the question stays answered)."""
    if question.status in (Question.Status.MERGED, Question.Status.WITHDRAWN):
        raise ActionError(f"this question was {question.status}: answer the one it joined")
    changes = {"answer": text, **_answered(moderator)} if text else {"answer": ""}
    Question.objects.filter(pk=question.pk).update(**changes)
    live.changed(question.event.code)


# --- the asker's own changes -------------------------------------------------------------------

OWN_CHANGEABLE = (Question.Status.VISIBLE, Question.Status.AWAITING_APPROVAL)


def editable_until(question: Question) -> datetime | None:
    """Until when its asker may still edit or withdraw ``question``; None when they may not (any more).

    Not once answered, on stage, merged, hidden or withdrawn (``_own_question`` also refuses
    once other questions were merged into it).
    """
    if question.status not in OWN_CHANGEABLE or question.answered or question.now_answering:
        return None
    until = question.created_at + timedelta(seconds=settings.QUESTION_EDIT_WINDOW_S)
    return until if timezone.now() < until else None


def _own_question(question: Question, attendee: str) -> Question:
    """``question`` locked, if ``attendee`` asked it and may still change it; ActionError otherwise."""
    question = Question.objects.select_for_update().select_related("event").get(pk=question.pk)
    if question.attendee != attendee:
        raise ActionError("only its asker can change a question")
    if not question.event.is_open:
        raise ActionError("this event is closed")
    if editable_until(question) is None:
        minutes = max(1, settings.QUESTION_EDIT_WINDOW_S // 60)
        if question.status not in OWN_CHANGEABLE:
            raise ActionError(f"this question was {question.status.replace('_', ' ')}: it can no longer change")
        if question.answered or question.now_answering:
            raise ActionError("this question is being or was answered: it can no longer change")
        raise ActionError(f"a question can be changed for {minutes} minute{'s' if minutes > 1 else ''} after asking")
    if Question.objects.filter(merged_into=question).exists():
        raise ActionError("other questions were merged into this one: it can no longer change")
    return question


def edit_question(question: Question, attendee: str, text: str) -> Question:
    """Its asker rewords ``question``: processed again (vector, sentiment, flags); the votes stay.

    The flags raised for the old text that no moderator decided yet go (the new text gets its own);
    decided ones stay as the moderators' record. Under pre-moderation an approved question waits
    for approval again, so an edit cannot slip past the moderators.
    """
    from webapp.questions.tasks import enqueue

    with transaction.atomic():
        question = _own_question(question, attendee)
        if text == question.text:
            return question
        Flag.objects.filter(question=question, status=Flag.Status.OPEN).delete()
        if question.event.premoderation and question.status == Question.Status.VISIBLE:
            question.status = Question.Status.AWAITING_APPROVAL
        lifecycle.edited(question, text)
        transaction.on_commit(partial(enqueue, question.pk))
    return question


def withdraw_question(question: Question, attendee: str) -> Question:
    """Its asker takes ``question`` back: kept (for the record and the export), shown to no one else.

    Its open flags, either side, are closed as dismissed without a moderator.
    """
    with transaction.atomic():
        question = _own_question(question, attendee)
        question.status = Question.Status.WITHDRAWN
        question.pinned = question.now_answering = False
        question.save(update_fields=["status", "pinned", "now_answering"])
        Flag.objects.filter(Q(question=question) | Q(matched=question), status=Flag.Status.OPEN).update(
            status=Flag.Status.DISMISSED, decided_by=None, decided_at=timezone.now()
        )
        live.changed(question.event.code)
    return question
