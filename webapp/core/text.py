"""What a typed question is stored and compared as: one cleaning rule for the API, the forms and search.

Without it, a question of zero-width characters is "not empty", two of them score 1.0 against each
other, a lone surrogate fails at the database or the tokenizer (a 500), and the length check counts
characters nobody sees.
"""

from __future__ import annotations

import unicodedata

# Callers refuse text this many times longer than their limit before cleaning it (NFKC can make a
# string 18 times longer, and cleaning costs time).
RAW_CHARS_PER_CHAR = 10
# Rendered as blank space though not Unicode whitespace: Hangul fillers, the blank Braille pattern.
BLANKS = {0x115F: " ", 0x1160: " ", 0x3164: " ", 0xFFA0: " ", 0x2800: " "}


class InvalidText(ValueError):
    """Text that cannot be stored; the message reads after a field name ("text: ...")."""


def clean_lines(value: str) -> str:
    """``clean_text`` line by line, for text with paragraphs (a written answer): line breaks stay,
    at most one blank line in a row, none at either end."""
    lines = [clean_text(line) for line in value.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    kept: list[str] = []
    for line in lines:
        if line or (kept and kept[-1]):
            kept.append(line)
    return "\n".join(kept).strip("\n")


def clean_text(value: str) -> str:
    """NFKC, without format characters, whitespace collapsed; "" when nothing visible is left.

    Format characters (Unicode category Cf) are the zero-width ones (U+200B-U+200D, U+2060, U+FEFF),
    the bidi controls (U+200E/F, U+202A-U+202E, U+2066-U+2069), the soft hyphen and the tag
    characters. Raises InvalidText for a lone surrogate or a control character.
    """
    if any("\ud800" <= c <= "\udfff" for c in value):
        raise InvalidText("not valid Unicode (a lone surrogate)")
    value = unicodedata.normalize("NFKC", value).translate(BLANKS)
    value = "".join(c for c in value if unicodedata.category(c) != "Cf")
    value = " ".join(value.split())
    # Marks alone (combining accents, variation selectors) show nothing either.
    if not any(unicodedata.category(c)[0] != "M" for c in value.replace(" ", "")):
        return ""
    if any(unicodedata.category(c) == "Cc" for c in value):
        raise InvalidText("control characters are not allowed")
    return value
