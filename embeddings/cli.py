"""What the command-line entry points share: error reporting and the final JSON line."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

from embeddings.errors import FunctionError


def run(main: Callable[[], dict[str, Any]], as_json: bool, show: Callable[[dict[str, Any]], None]) -> int:
    """Call ``main``; print its result (as one JSON object with ``as_json``), or a one-line error."""
    try:
        result = main()
    except (FunctionError, ValueError) as exc:  # ValueError includes embeddings.pairs.DataError
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if as_json:
        print(json.dumps(result))
    else:
        show(result)
    return 0
