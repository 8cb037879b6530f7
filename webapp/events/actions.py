"""Writes on an event's moderators: plain functions, each one transaction."""

from __future__ import annotations

import secrets

from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from webapp.events.models import Event


def add_moderator(event: Event, username: str) -> AbstractBaseUser:
    """An existing user moderates ``event`` from now on."""
    users = get_user_model()
    user = users.objects.filter(**{users.USERNAME_FIELD: username}).first()
    if user is None:
        raise ValidationError(f"no user named {username!r}: create one below")
    if event.moderators.filter(pk=user.pk).exists():
        raise ValidationError(f"{username} moderates this event already")
    event.moderators.add(user)
    return user


def remove_moderator(event: Event, username: str) -> AbstractBaseUser:
    """``username`` no longer moderates ``event`` (their account stays, with their other events)."""
    users = get_user_model()
    user = users.objects.filter(**{users.USERNAME_FIELD: username}).first()
    # One DELETE, and its count decides: of two owners removing the same user at once, one is told
    # it is done and the other that the user is not on the list.
    if user is None or not Event.moderators.through.objects.filter(event=event, user=user).delete()[0]:
        raise ValidationError(f"{username} does not moderate this event")
    return user


def create_moderator(event: Event, username: str) -> tuple[AbstractBaseUser, str]:
    """A new plain user (not staff) who moderates ``event``, and its generated password.

    The password is returned once and stored only hashed, as ``create_event --create-moderator``
    prints it.
    """
    users = get_user_model()
    users._meta.get_field(users.USERNAME_FIELD).run_validators(username)
    password = secrets.token_urlsafe(12)
    try:
        with transaction.atomic():
            # Race: two owners creating the same name; the unique username decides.
            user = users.objects.create_user(username, password=password)
            event.moderators.add(user)
    except IntegrityError:
        raise ValidationError(f"a user named {username!r} exists already: add them above") from None
    return user, password
