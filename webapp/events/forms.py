from __future__ import annotations

from django import forms
from django.contrib.auth import get_user_model


class ModeratorForm(forms.Form):
    """A user name: an existing user to add, a new one to create, or a moderator to remove (``action``)."""

    ACTIONS = (("add", "Add an existing user"), ("create", "Create a new user"), ("remove", "Remove a moderator"))

    action = forms.ChoiceField(choices=ACTIONS, widget=forms.HiddenInput)
    username = forms.CharField(label="User name", max_length=150, strip=True)

    def clean_username(self) -> str:
        username = self.cleaned_data["username"]
        return get_user_model().normalize_username(username)
