"""Which package may import which: the lab and the measurements sit outside, never imported back."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from tests.conftest import ROOT

# embeddings/ is zipped for Lambda and imported by the web app; webapp/ is the service.
OUTSIDE = {"training", "benchmarks"}
# What the function package never imports (STYLE.md: no Django, Celery or FAISS; torch belongs to the lab).
NOT_IN_FUNCTIONS = {"django", "celery", "faiss", "torch", "transformers", "sentence_transformers", "webapp"}


def imported(path: Path) -> list[tuple[int, str]]:
    """(line, top-level package) of every absolute import in ``path``, wherever it stands in the file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name.split(".")[0]) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module.split(".")[0]))
    return found


def offending(package: str, forbidden: set[str]) -> list[str]:
    return [
        f"{path.relative_to(ROOT)}:{line} imports {name}"
        for path in sorted((ROOT / package).rglob("*.py"))
        for line, name in imported(path)
        if name in forbidden
    ]


@pytest.mark.parametrize("package", ["embeddings", "webapp"])
def test_neither_functions_nor_web_app_import_the_lab_or_the_benchmarks(package: str):
    assert offending(package, OUTSIDE) == []


def test_the_function_package_imports_no_framework_of_the_service_or_the_lab():
    assert offending("embeddings", NOT_IN_FUNCTIONS) == []


def test_the_rule_sees_a_deferred_import(tmp_path: Path):
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from training.metrics import spearman\n    import django.conf\n")
    assert imported(module) == [(2, "training"), (3, "django")]


def test_the_container_image_copies_the_modules_the_zip_holds():
    from embeddings.package import FUNCTION_MODULES

    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    copied = set(re.findall(r"embeddings/(\w+)\.py", dockerfile))
    assert copied == {name.removesuffix(".py") for name in FUNCTION_MODULES}
