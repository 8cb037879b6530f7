"""python -m benchmarks [--parts functions,index,load,faults] [--quick] [--out docs] [--report-only]"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from pathlib import Path

from benchmarks import machine, report

PARTS = ("functions", "index", "load", "faults")


def run_part(part: str, quick: bool, data_dir: Path, command: str) -> bool:
    """Measure one part and save its raw results; False when the part has no module yet."""
    try:
        module = importlib.import_module(f"benchmarks.{part}")
    except ModuleNotFoundError as exc:
        if exc.name != f"benchmarks.{part}":
            raise
        print(f"== {part}: skipped, benchmarks/{part}.py does not exist yet", flush=True)
        return False
    print(f"== {part}{' (quick)' if quick else ''}", flush=True)
    started = time.perf_counter()
    data = module.run(quick)
    data.setdefault("machine", machine.machine())
    data.setdefault("started", machine.now())
    data.update(part=part, quick=quick, command=command, elapsed_s=round(time.perf_counter() - started, 1))
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / f"{part}.json"
    path.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    print(f"== {part}: {data['elapsed_s']} s, raw results in {path}", flush=True)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--parts", default=",".join(PARTS), help="comma-separated, run in this order")
    parser.add_argument("--quick", action="store_true", help="tiny request counts: checks the harness, not the speed")
    parser.add_argument("--out", type=Path, default=Path("docs"), help="benchmarks.md here, raw JSON and PNGs below")
    parser.add_argument("--report-only", action="store_true", help="re-render from the saved JSON, measure nothing")
    args = parser.parse_args(argv)
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    data_dir = args.out / report.DATA_DIR
    if not args.report_only:
        command = " ".join(["python -m benchmarks", *(sys.argv[1:] if argv is None else argv)])
        for part in parts:
            run_part(part, args.quick, data_dir, command)
    path = report.render(args.out)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
