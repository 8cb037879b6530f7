from __future__ import annotations

import numpy as np
from django.conf import settings
from django.db import models
from django.utils import timezone

from webapp.events.models import Event

MAX_QUESTION_CHARS = 300
MAX_NAME_CHARS = 60
MAX_ANSWER_CHARS = 2000
# A stored vector: float32, little-endian, L2-normalised, in the space of ``Question.vector_model``.
VECTOR_DTYPE = "<f4"


def vector_bytes(vector: np.ndarray) -> bytes:
    return np.asarray(vector, dtype=VECTOR_DTYPE).tobytes()


def vector_array(raw: bytes | memoryview) -> np.ndarray:
    return np.frombuffer(bytes(raw), dtype=VECTOR_DTYPE)


class QuestionQuerySet(models.QuerySet["Question"]):
    def for_event(self, event: Event) -> QuestionQuerySet:
        return self.filter(event=event)

    def public(self) -> QuestionQuerySet:
        """What every attendee sees: approved, not hidden, not merged away."""
        return self.filter(status=Question.Status.VISIBLE)

    def with_vector(self, model: str | None = None) -> QuestionQuerySet:
        """Questions with a vector; of ``model``'s space only when given (vectors of two models never mix)."""
        rows = self.filter(vector__isnull=False)
        return rows if model is None else rows.filter(vector_model=model)

    def by_votes(self) -> QuestionQuerySet:
        return self.order_by("-now_answering", "-pinned", "answered", "-vote_count", "-created_at")

    def by_time(self) -> QuestionQuerySet:
        return self.order_by("-now_answering", "-pinned", "-created_at")


class Question(models.Model):
    class Status(models.TextChoices):
        VISIBLE = "visible"
        AWAITING_APPROVAL = "awaiting_approval"
        HIDDEN = "hidden"
        MERGED = "merged"
        WITHDRAWN = "withdrawn"  # by its asker (webapp/questions/actions.py withdraw_question)

    class State(models.TextChoices):
        """Processing by the functions: embedding, sentiment, duplicate search."""

        PENDING = "pending"
        PROCESSED = "processed"
        FAILED = "failed"

    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="questions")
    text = models.CharField(max_length=MAX_QUESTION_CHARS)
    author_name = models.CharField(max_length=MAX_NAME_CHARS, blank=True)
    attendee = models.CharField(max_length=64, db_index=True, help_text="The asker's signed-cookie id.")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    status = models.CharField(max_length=20, choices=Status.choices, default=Status.VISIBLE)
    answered = models.BooleanField(default=False)
    answer = models.TextField(blank=True, help_text="A moderator's or speaker's written answer.")
    answered_at = models.DateTimeField(null=True, blank=True)
    answered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    now_answering = models.BooleanField(default=False, help_text="On stage now: one question per event at most.")
    pinned = models.BooleanField(default=False)
    edited_at = models.DateTimeField(null=True, blank=True, help_text="When its asker last changed the text.")
    merged_into = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="merged")
    vote_count = models.PositiveIntegerField(default=0)

    state = models.CharField(max_length=20, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    vector = models.BinaryField(null=True, blank=True, help_text="float32, little-endian, L2-normalised")
    vector_model = models.CharField(max_length=100, blank=True)
    sentiment_label = models.CharField(max_length=20, blank=True)
    sentiment_scores = models.JSONField(null=True, blank=True)
    # Recovery (webapp/questions/recovery.py): the database, not the broker, says what is left to do.
    enqueued_at = models.DateTimeField(
        null=True, blank=True, default=timezone.now, help_text="When a task was last sent; empty: send it now."
    )
    retryable = models.BooleanField(default=False, help_text="The last failure was transient: send it again.")
    timings = models.JSONField(
        null=True,
        blank=True,
        help_text="Milliseconds the last processing took: queue wait, functions, index, database.",
    )

    objects = QuestionQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["event", "status"]),
            models.Index(fields=["event", "state"]),
            models.Index(fields=["state", "enqueued_at"], name="questions_sweep_idx"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["event"], condition=models.Q(now_answering=True), name="one_now_answering_per_event"
            )
        ]

    def __str__(self) -> str:
        return self.text[:60]

    def embedding(self) -> np.ndarray | None:
        if self.vector is None:
            return None
        return vector_array(self.vector)


class Vote(models.Model):
    question = models.ForeignKey(Question, on_delete=models.CASCADE, related_name="votes")
    attendee = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["question", "attendee"], name="one_vote_per_attendee")]
        # Every poll of the list reads the asker's votes in the event (webapp/questions/listing.py).
        indexes = [models.Index(fields=["attendee"], name="questions_vote_attendee_idx")]

    def __str__(self) -> str:
        return f"vote on {self.question_id}"


class Flag(models.Model):
    """A new question that looks like one asked before, for a moderator to merge or dismiss."""

    class Kind(models.TextChoices):
        DUPLICATE = "duplicate"
        RELATED = "related"

    class Status(models.TextChoices):
        OPEN = "open"
        MERGED = "merged"
        DISMISSED = "dismissed"

    question = models.ForeignKey(Question, on_delete=models.CASCADE, related_name="flags")
    matched = models.ForeignKey(Question, on_delete=models.CASCADE, related_name="matched_by")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    similarity = models.FloatField()
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.OPEN)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    decided_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-similarity"]
        constraints = [models.UniqueConstraint(fields=["question", "matched"], name="one_flag_per_pair")]

    def __str__(self) -> str:
        return f"{self.kind} {self.question_id} ~ {self.matched_id} ({self.similarity:.2f})"
