from __future__ import annotations

from django import forms

MAX_QUESTION_CHARS = 300


class CompareForm(forms.Form):
    a = forms.CharField(label="Question A", max_length=MAX_QUESTION_CHARS, strip=True)
    b = forms.CharField(label="Question B", max_length=MAX_QUESTION_CHARS, strip=True)
