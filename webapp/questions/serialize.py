"""The JSON shape of questions and flags, shared by the API and the pages' live updates."""

from __future__ import annotations

from typing import Any

from webapp.questions.actions import editable_until
from webapp.questions.models import Flag, Question


def question_json(
    question: Question, attendee: str | None = None, moderator: bool = False, voted: bool = False
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": question.pk,
        "text": question.text,
        "name": question.author_name,
        "created_at": question.created_at.isoformat(),
        "state": question.state,
        "status": question.status,
        "answered": question.answered,
        "answer": question.answer if question.answered else "",
        "answered_at": question.answered_at.isoformat() if question.answered and question.answered_at else None,
        "now_answering": question.now_answering,
        "edited": question.edited_at is not None,
        "pinned": question.pinned,
        "votes": question.vote_count,
        "merged_into": question.merged_into_id,
        "merged_into_text": _merged_into_text(question),
        "mine": attendee is not None and question.attendee == attendee,
        "voted": voted,
        "sentiment": (
            {"label": question.sentiment_label, "scores": question.sentiment_scores}
            if question.sentiment_label
            else None
        ),
    }
    if data["mine"]:
        until = editable_until(question)
        data["editable_until"] = until.isoformat() if until else None
    if moderator:
        data["answer"] = question.answer  # kept while marked not answered: shown again when it is
        data["last_error"] = question.last_error
        data["attempts"] = question.attempts
    return data


def _merged_into_text(question: Question) -> str | None:
    """What the asker of a merged question sees of the one it joined: its text while it is public.

    One query per merged question unless the caller selected ``merged_into`` with it.
    """
    if question.merged_into_id is None:
        return None
    original = question.merged_into
    return original.text if original.status == Question.Status.VISIBLE else None


def flags_json(question: Question, moderator: bool = False) -> list[dict[str, Any]]:
    """The flags raised for ``question``; their verdicts (``status``) are for moderators only."""
    flags = []
    for f in question.flags.all():
        data = {"id": f.pk, "kind": f.kind, "similarity": round(f.similarity, 4), "matched_id": f.matched_id}
        if moderator:
            data["status"] = f.status
        flags.append(data)
    return flags


def flag_json(flag: Flag) -> dict[str, Any]:
    """A flag for the moderators; the caller select_related question, matched and decided_by."""
    return {
        "id": flag.pk,
        "kind": flag.kind,
        "similarity": round(flag.similarity, 4),
        "status": flag.status,
        "question": question_json(flag.question, moderator=True),
        "matched": question_json(flag.matched, moderator=True),
        "created_at": flag.created_at.isoformat(),
        "decided_at": flag.decided_at.isoformat() if flag.decided_at else None,
        "decided_by": flag.decided_by.get_username() if flag.decided_by_id else None,
    }
