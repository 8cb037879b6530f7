"""AWS Lambda's price model (x86, us-east-1): per GB-second of billed duration plus a per-request fee."""

from __future__ import annotations

import math
from collections.abc import Iterable

GB_SECOND_USD = 0.0000166667
REQUEST_USD = 0.20 / 1_000_000


def cost_per_million(durations_ms: Iterable[float], memory_mb: int, billing_ms: int = 1) -> float:
    """Dollars for one million calls whose durations are like ``durations_ms``.

    Lambda rounds each call up to ``billing_ms`` (1 ms since December 2020; 100 ms before, the
    model Tu et al. priced with).
    """
    durations = list(durations_ms)
    if not durations:
        raise ValueError("no durations")
    billed_s = [math.ceil(d / billing_ms) * billing_ms / 1000 for d in durations]
    mean_compute = sum(billed_s) / len(billed_s) * (memory_mb / 1024) * GB_SECOND_USD
    return round((mean_compute + REQUEST_USD) * 1_000_000, 4)
