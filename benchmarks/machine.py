"""What a figure was measured on: the CPU, the cores, and what else was running at the time."""

from __future__ import annotations

import datetime as dt
import os
import platform
import time
from pathlib import Path
from typing import Any

BUSY_SHARE = 0.25  # another process using more than a quarter of a core is worth naming


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _cpu_ticks() -> dict[int, tuple[str, int]]:
    ticks = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text(encoding="utf-8")
        except OSError:
            continue  # the process ended while we looked
        name = text[text.index("(") + 1 : text.rindex(")")]
        fields = text[text.rindex(")") + 2 :].split()
        ticks[int(stat.parent.name)] = (name, int(fields[11]) + int(fields[12]))  # utime + stime
    return ticks


def _cmdline(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    argv = raw.decode("utf-8", "replace").split("\0")
    return " ".join([Path(argv[0]).name, *argv[1:]]).strip()[:100]


def busy_processes(window_s: float = 1.0) -> list[dict[str, Any]]:
    """Processes other than this one that used over a quarter of a core during ``window_s``."""
    if not Path("/proc/self/stat").exists():
        return []
    hz = os.sysconf("SC_CLK_TCK")
    before = _cpu_ticks()
    time.sleep(window_s)
    after = _cpu_ticks()
    busy = []
    for pid, (name, ticks) in after.items():
        if pid == os.getpid() or pid not in before:
            continue
        share = (ticks - before[pid][1]) / hz / window_s
        if share > BUSY_SHARE:
            busy.append({"pid": pid, "name": name, "cores": round(share, 2), "command": _cmdline(pid)})
    return sorted(busy, key=lambda p: -p["cores"])


def snapshot() -> dict[str, Any]:
    """The load on the machine now: load averages and the busy processes."""
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = []
    return {"at": now(), "loadavg": load, "busy": busy_processes()}


def machine() -> dict[str, Any]:
    import numpy
    import onnxruntime

    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "system": f"{platform.system()} {platform.release()}",
        "numpy": numpy.__version__,
        "onnxruntime": onnxruntime.__version__,
    }


def now() -> str:
    return dt.datetime.now(dt.UTC).astimezone().isoformat(timespec="seconds")


def busy_note(data: dict[str, Any]) -> str | None:
    """A warning for a document when other processes took CPU while a part was measured."""
    seen: dict[str, float] = {}
    for key in ("load_before", "load_after"):
        for process in (data.get(key) or {}).get("busy", []):
            label = process.get("command") or process["name"]
            seen[label] = max(seen.get(label, 0.0), process["cores"])
    if not seen:
        return None
    others = "; ".join(f"`{label}` ({cores:g} cores)" for label, cores in seen.items())
    cores = data.get("machine", {}).get("cores", "?")
    return (
        f"**Measured while other processes were busy** on this {cores}-core machine: {others}, at the start or "
        "the end of the run. Every figure is slower and noisier than on a quiet machine; re-run at a quiet time."
    )
