"""Build the AWS Lambda deployment zip: the function code, the models, and manylinux wheels.

    python -m embeddings.package --out dist/ [--models minilm-l6,sentiment-minilm-l3 | all] [--json]

Dependencies are fetched by pip for Lambda's platform whatever machine builds the zip: the
python3.12 runtime (Amazon Linux 2023, glibc 2.34) on x86_64. The python3.11 runtime runs Amazon
Linux 2 (glibc 2.26), too old for current onnxruntime wheels (manylinux_2_27 and newer).
Prints unzipped and zipped sizes against Lambda's 250 MB limit, and fails when over it.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

from embeddings import cli
from embeddings.cards import (
    DEFAULT_EMBEDDING_MODEL,
    DEFAULT_SENTIMENT_MODEL,
    DEFAULT_VERIFIER_MODEL,
    MODELS_DIR,
    available,
)

ROOT = Path(__file__).resolve().parent.parent
LAMBDA_LIMIT_MB = 250.0
# What the handlers import; the rest of requirements.txt is the web app's. tokenizers goes in
# without its dependencies: huggingface_hub and friends (about 20 MB) only serve hub downloads.
FUNCTION_REQUIREMENTS = ("onnxruntime", "numpy")
NO_DEPS_REQUIREMENTS = ("tokenizers",)
# The modules a Lambda runs: the handlers and what they import. The rest of embeddings/ (the client,
# the host, this builder) serves callers and stays out.
FUNCTION_MODULES = (
    "__init__.py",
    "handlers.py",
    "runtime.py",
    "pooling.py",
    "payload.py",
    "slots.py",
    "cards.py",
    "errors.py",
)
# Files inside the wheels that a Lambda never loads.
PRUNED = (
    "onnxruntime/transformers",
    "onnxruntime/tools",
    "onnxruntime/quantization",
    "onnxruntime/datasets",
    "numpy/tests",
    "numpy/*/tests",
    "numpy/f2py",
    "numpy/typing/tests",
    "bin",
)


def pinned(names: tuple[str, ...], requirements: Path = ROOT / "requirements.txt") -> list[str]:
    """The pins for ``names`` from requirements.txt, so the zip runs what the tests ran."""
    pins = {}
    for line in requirements.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.-]+)(\[[^\]]*\])?==([^\s;#]+)", line.strip())
        if match:
            pins[match.group(1).lower()] = f"{match.group(1)}=={match.group(3)}"
    missing = [n for n in names if n not in pins]
    if missing:
        raise ValueError(f"{requirements}: no pinned version for {', '.join(missing)}")
    return [pins[n] for n in names]


PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux2014_x86_64")


def install_dependencies(target: Path, python_version: str, platforms: tuple[str, ...]) -> None:
    command = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-compile",
        "--upgrade",
        "--target",
        str(target),
        *(f"--platform={p}" for p in platforms),
        "--implementation",
        "cp",
        "--python-version",
        python_version,
        "--only-binary=:all:",
    ]
    for extra, names in (([], FUNCTION_REQUIREMENTS), (["--no-deps"], NO_DEPS_REQUIREMENTS)):
        result = subprocess.run([*command, *extra, *pinned(names)], capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise ValueError(f"pip could not fetch the Lambda dependencies:\n{result.stderr.strip()[-2000:]}")


def copy_code(target: Path, models: list[str]) -> None:
    package = ROOT / "embeddings"
    destination = target / "embeddings"
    destination.mkdir()
    for name in FUNCTION_MODULES:
        shutil.copy(package / name, destination / name)
    for name in models:
        if not (MODELS_DIR / name / "model.json").exists():
            raise ValueError(f"unknown model {name!r}; available: {', '.join(available())}")
        shutil.copytree(MODELS_DIR / name, destination / "models" / name)


def prune(target: Path) -> None:
    for pattern in PRUNED:
        for path in target.glob(pattern):
            shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink()
    for cache in target.rglob("__pycache__"):
        shutil.rmtree(cache, ignore_errors=True)


def directory_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6


def write_zip(source: Path, archive: Path) -> None:
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for path in sorted(source.rglob("*")):
            if path.is_file():
                info = zipfile.ZipInfo.from_file(path, path.relative_to(source).as_posix())
                info.external_attr = (0o755 if os.access(path, os.X_OK) else 0o644) << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                zf.writestr(info, path.read_bytes())


def build(out: Path, models: list[str], python_version: str, platforms: tuple[str, ...]) -> dict[str, Any]:
    staging = out / "lambda"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    install_dependencies(staging, python_version, platforms)
    copy_code(staging, models)
    prune(staging)
    archive = out / "lambda.zip"
    archive.unlink(missing_ok=True)
    write_zip(staging, archive)
    unzipped = directory_mb(staging)
    result = {
        "zip": str(archive),
        "models": models,
        "unzipped_mb": round(unzipped, 1),
        "zipped_mb": round(archive.stat().st_size / 1e6, 1),
        "limit_mb": LAMBDA_LIMIT_MB,
        "within_limit": unzipped <= LAMBDA_LIMIT_MB,
    }
    if not result["within_limit"]:
        raise ValueError(f"{archive}: {unzipped:.1f} MB unzipped, over Lambda's {LAMBDA_LIMIT_MB:.0f} MB limit")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m embeddings.package", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("dist"))
    parser.add_argument(
        "--models",
        default=",".join(
            [DEFAULT_EMBEDDING_MODEL, DEFAULT_SENTIMENT_MODEL]
            + [DEFAULT_VERIFIER_MODEL] * (DEFAULT_VERIFIER_MODEL in available("verifier"))
        ),
        help="comma-separated model names to ship (default: the two the functions serve; 'all': every model)",
    )
    parser.add_argument("--python-version", default="3.12", help="the Lambda runtime's Python")
    parser.add_argument("--platform", action="append", help=f"wheel platform tags (default: {', '.join(PLATFORMS)})")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    models = available() if args.models == "all" else [m.strip() for m in args.models.split(",") if m.strip()]
    return cli.run(
        lambda: build(args.out, models, args.python_version, tuple(args.platform or PLATFORMS)),
        args.json,
        lambda r: print(
            f"{r['zip']}: {r['unzipped_mb']} MB unzipped, {r['zipped_mb']} MB zipped "
            f"(Lambda's limit: {r['limit_mb']:.0f} MB unzipped); models: {', '.join(r['models'])}"
        ),
    )


if __name__ == "__main__":
    sys.exit(main())
