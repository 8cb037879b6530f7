from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, models, transaction

from webapp.events import codes


class EventQuerySet(models.QuerySet["Event"]):
    def by_code(self, code: str) -> Event | None:
        """The event with this join code, in any letter case and spacing; None for no such event (and
        for a code that cannot be one, without a query)."""
        code = codes.normalise(code)
        return self.filter(code=code).first() if codes.is_valid(code) else None

    def moderated_by(self, user) -> EventQuerySet:
        if user.is_staff:
            return self
        return self.filter(moderators=user)


class Event(models.Model):
    title = models.CharField(max_length=200)
    code = models.CharField(max_length=20, unique=True)
    is_open = models.BooleanField(default=True, help_text="Closed events take no new questions or votes.")
    anonymous_allowed = models.BooleanField(default=True, help_text="Attendees may ask without a name.")
    premoderation = models.BooleanField(default=False, help_text="Questions wait for a moderator's approval.")
    duplicate_threshold = models.FloatField(null=True, blank=True, help_text="Override of the model's card.")
    related_threshold = models.FloatField(null=True, blank=True, help_text="Override of the model's card.")
    moderators = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="moderated_events")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = EventQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.title} ({self.code})"

    def clean(self) -> None:
        self.code = codes.normalise(self.code or "")
        if not codes.is_valid(self.code):
            raise ValidationError({"code": "3 to 20 letters, digits or dashes"})
        for name in ("duplicate_threshold", "related_threshold"):
            value = getattr(self, name)
            if value is not None and not -1.0 <= value <= 1.0:
                raise ValidationError({name: "a cosine similarity between -1 and 1"})
        if (
            self.duplicate_threshold is not None
            and self.related_threshold is not None
            and self.related_threshold > self.duplicate_threshold
        ):
            raise ValidationError({"related_threshold": "must not be above the duplicate threshold"})

    def is_moderator(self, user) -> bool:
        if not user.is_authenticated:
            return False
        return user.is_staff or self.moderators.filter(pk=user.pk).exists()

    def is_owner(self, user) -> bool:
        """Who may add moderators: the event's creator, and staff."""
        if not user.is_authenticated:
            return False
        return user.is_staff or (self.created_by_id is not None and self.created_by_id == user.pk)

    @classmethod
    def create(cls, title: str, code: str | None = None, **fields) -> Event:
        """A new event with the given or a fresh random join code."""
        for _ in range(10):
            event = cls(title=title, code=codes.normalise(code) if code else codes.new_code(), **fields)
            event.full_clean(exclude=["moderators"])
            try:
                with transaction.atomic():
                    event.save()
                return event
            except IntegrityError:
                if code:
                    raise ValidationError({"code": f"{event.code} is taken"}) from None
        raise RuntimeError("could not find a free join code")
