"""Join codes: short, unambiguous when read aloud or off a screen (no 0/O, 1/I/L)."""

from __future__ import annotations

import re
import secrets

ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
LENGTH = 6
CODE_RE = re.compile(r"^[A-Za-z0-9-]{3,20}$")


def new_code() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))


def normalise(code: str) -> str:
    return code.strip().upper()


def is_valid(code: str) -> bool:
    return bool(CODE_RE.match(code))
