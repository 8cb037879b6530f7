"""docs/benchmarks.md from every docs/benchmarks/<part>.json present: a header, then each part's section."""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

from benchmarks.summary import table

DATA_DIR = "benchmarks"
ORDER = ("functions", "index", "load", "faults")


def load(data_dir: Path) -> dict[str, dict[str, Any]]:
    found = {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in sorted(data_dir.glob("*.json"))}
    return {name: found[name] for name in sorted(found, key=lambda n: (ORDER.index(n) if n in ORDER else 99, n))}


def _busy(snapshot: dict[str, Any] | None) -> str:
    if not snapshot:
        return "-"
    load = "/".join(f"{x:g}" for x in snapshot.get("loadavg", []))
    others = ", ".join(
        f"`{(p.get('command') or p['name'])[:60]}` {p['cores']:g} cores" for p in snapshot.get("busy", [])
    )
    return f"load {load}" + (f"; busy: {others}" if others else "; nothing else busy")


def _took(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def header(parts: dict[str, dict[str, Any]]) -> str:
    rows = []
    for name, data in parts.items():
        m = data.get("machine", {})
        when = data.get("started", "?")
        rows.append(
            [
                name,
                when.replace("T", " "),
                f"{m.get('cpu', '?')}, {m.get('cores', '?')} cores",
                _took(data.get("elapsed_s")),
                f"`{data.get('command', '?')}`" + (" (quick: smoke figures only)" if data.get("quick") else ""),
                _busy(data.get("load_before")),
                _busy(data.get("load_after")),
            ]
        )
    repeats = sorted({data.get("repeats", 1) for data in parts.values()})
    return "\n".join(
        [
            "# Benchmarks",
            "",
            "Written by `make bench` (`python -m benchmarks`; one part: `--parts NAME`; re-render without measuring: "
            "`--report-only`) from the raw results in [benchmarks/](benchmarks/), which also hold the plots. "
            "Do not edit by hand.",
            "",
            f"Figures that depend on the machine are the median of {' or '.join(map(str, repeats))} repeats with the "
            "min-max spread over the repeats in brackets (`2.31 (2.20-2.45)`); within a table every row was measured "
            "side by side in the same run, in alternating rounds where that was cheap, so rows compare fairly even "
            "when the machine's speed drifts. Tables in different runs do not compare as well: these are shared "
            "2-core machines, and the same command has given medians 20-45 % apart within an hour (docs/functions.md).",
            "",
            table(["part", "measured", "machine", "took", "command", "before", "after"], rows),
        ]
    )


def section(name: str, data: dict[str, Any], figures_dir: Path) -> str:
    try:
        module = importlib.import_module(f"benchmarks.{name}")
    except ModuleNotFoundError:
        return f"## {name}\n\nNo renderer: `benchmarks/{name}.py` is missing; the raw results are in `{name}.json`."
    return module.section(data, figures_dir).strip()


def standalone(name: str) -> bool:
    """Raw results of a command that documents itself elsewhere (a module without ``section``, such as
    benchmarks/embedded.py for docs/app.md): kept beside the others, not rendered here."""
    try:
        module = importlib.import_module(f"benchmarks.{name}")
    except ModuleNotFoundError:
        return False
    return not hasattr(module, "section")


def render(out: Path) -> Path:
    figures_dir = out / DATA_DIR
    parts = {name: data for name, data in load(figures_dir).items() if not standalone(name)}
    body = [header(parts)] if parts else ["# Benchmarks", "", "Nothing measured yet: run `make bench`."]
    body += [section(name, data, figures_dir) for name, data in parts.items()]
    path = out / "benchmarks.md"
    path.write_text("\n\n".join(body) + "\n", encoding="utf-8")
    return path
