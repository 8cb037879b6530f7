"""Deployment artefacts: the SAM template passes cfn-lint and names real handlers; the Lambda zip builds;
the web app's production settings pass Django's deployment checks."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from embeddings import handlers, package
from tests.conftest import ROOT, run_module

TEMPLATE = ROOT / "deploy" / "template.yaml"


def cfn_lint(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(Path(sys.executable).parent / "cfn-lint"), str(path)], capture_output=True, text=True, check=False
    )


def test_sam_template_passes_cfn_lint():
    result = cfn_lint(TEMPLATE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_cfn_lint_would_catch_a_broken_template(tmp_path: Path):
    broken = tmp_path / "template.yaml"
    broken.write_text(TEMPLATE.read_text().replace("!Ref MemorySize", "!Ref NoSuchParameter"))
    assert cfn_lint(broken).returncode != 0


def test_template_handlers_exist():
    text = TEMPLATE.read_text()
    for name in ("embed", "sentiment"):
        assert f"Handler: embeddings.handlers.{name}" in text
        assert callable(getattr(handlers, name))


def test_lambda_zip_builds_within_the_limit(tmp_path: Path):
    code, result, err = run_module("embeddings.package", "--out", str(tmp_path), "--models", "minilm-l3", "--json")
    if code != 0 and ("Could not fetch" in err or "NewConnectionError" in err or "Temporary failure" in err):
        pytest.skip(f"the package registry is unreachable: {err.strip()[-200:]}")
    assert code == 0, err
    assert result["within_limit"] is True and 0 < result["zipped_mb"] < result["unzipped_mb"] <= 250
    names = set(zipfile.ZipFile(result["zip"]).namelist())
    models = [f"embeddings/models/minilm-l3/{f}" for f in ("model.json", "model.onnx", "tokenizer.json")]
    assert sorted(n for n in names if n.startswith("embeddings/")) == sorted(FUNCTION_CODE + models)
    assert not any(n.startswith(("training/", "benchmarks/", "webapp/")) for n in names)
    assert any(n.startswith("onnxruntime/capi/") for n in names)
    assert any(n.startswith("tokenizers/") for n in names) and not any(n.startswith("huggingface_hub/") for n in names)


FUNCTION_CODE = [
    "embeddings/__init__.py",
    "embeddings/cards.py",
    "embeddings/errors.py",
    "embeddings/handlers.py",
    "embeddings/payload.py",
    "embeddings/pooling.py",
    "embeddings/runtime.py",
    "embeddings/slots.py",
]


def test_lambda_zip_code_is_exactly_what_a_function_runs(tmp_path: Path):
    """The zip's own part (no wheels): the allow-listed modules and the models asked for, nothing else."""
    package.copy_code(tmp_path, ["minilm-l3"])
    names = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    models = [f"embeddings/models/minilm-l3/{f}" for f in ("model.json", "model.onnx", "tokenizer.json")]
    assert names == sorted(FUNCTION_CODE + models)


def test_lambda_zip_code_runs_alone(tmp_path: Path):
    """The handlers answer from the copied code and models only: the allow-list misses nothing they import."""
    package.copy_code(tmp_path, ["minilm-l6", "sentiment-minilm-l3", "verifier-minilm-l6"])
    script = (
        "import json; from embeddings import handlers as h;"
        "r = [h.embed({'texts': ['hi there?']}), h.sentiment({'texts': ['great talk!']}),"
        " h.verify({'pairs': [['when is lunch?', 'what time is lunch?']]})];"
        "print(json.dumps([h.__file__, [x.get('errorMessage') for x in r]]))"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "EMBEDDINGS_MODELS_DIR")}
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert out.returncode == 0, out.stderr
    where, errors = json.loads(out.stdout.strip().splitlines()[-1])
    assert Path(where).is_relative_to(tmp_path) and errors == [None, None, None]


def check_deploy(env: dict[str, str]) -> subprocess.CompletedProcess:
    """``manage.py check --deploy --fail-level WARNING`` in a fresh process with these variables."""
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        # The test run's own DJANGO_ALLOW_ASYNC_UNSAFE (conftest.py) is an error in production.
        env={**{k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"}, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


PRODUCTION = {
    "DEBUG": "0",
    "SECRET_KEY": secrets.token_urlsafe(64)[:50],
    "ALLOWED_HOSTS": "asktwice.example.org",
    "SECURE_COOKIES": "1",
    "SECURE_SSL_REDIRECT": "1",
    "SECURE_HSTS_SECONDS": "31536000",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS": "1",
    "SECURE_HSTS_PRELOAD": "1",
}


def test_production_settings_pass_the_deploy_checks_clean():
    result = check_deploy(PRODUCTION)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


def test_the_deploy_checks_see_a_missing_https_setting():
    result = check_deploy({**PRODUCTION, "SECURE_SSL_REDIRECT": "0", "SECURE_HSTS_SECONDS": "0"})
    assert result.returncode != 0
    assert "security.W004" in result.stderr and "security.W008" in result.stderr


def test_behind_a_proxy_the_forwarded_scheme_counts_only_when_trusted():
    read = [
        sys.executable,
        "manage.py",
        "shell",
        "-c",
        "from django.conf import settings; print(settings.SECURE_PROXY_SSL_HEADER)",
    ]
    for value, expected in (("1", "('HTTP_X_FORWARDED_PROTO', 'https')"), ("0", "None")):
        env = {**os.environ, "TRUST_X_FORWARDED_PROTO": value}
        out = subprocess.run(read, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=True)
        assert out.stdout.strip().splitlines()[-1] == expected
