from __future__ import annotations

from django import forms

from webapp.core.text import RAW_CHARS_PER_CHAR, InvalidText, clean_text

MAX_QUESTION_CHARS = 300


class QuestionField(forms.CharField):
    """A question's text, cleaned as the API cleans it (webapp/core/text.py) before the length check."""

    def to_python(self, value: object) -> str:
        value = super().to_python(value)
        if len(value) > self.max_length * RAW_CHARS_PER_CHAR:
            raise forms.ValidationError(f"Ensure this value has at most {self.max_length} characters.")
        try:
            return clean_text(value)
        except InvalidText as exc:
            message = str(exc)
            raise forms.ValidationError(f"{message[0].upper()}{message[1:]}.") from None


class CompareForm(forms.Form):
    a = QuestionField(label="Question A", max_length=MAX_QUESTION_CHARS)
    b = QuestionField(label="Question B", max_length=MAX_QUESTION_CHARS)
