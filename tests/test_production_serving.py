"""The production web server: gunicorn with deploy/gunicorn.conf.py, static files by whitenoise."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from benchmarks.embedded import ROOT, free_port


@pytest.fixture
def gunicorn(tmp_path: Path):
    port = free_port()
    env = {
        **os.environ,
        "VAR_DIR": str(tmp_path),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "DEBUG": "0",
        "WHITENOISE_USE_FINDERS": "0",
        "PORT": str(port),
        "WEB_WORKERS": "2",
        # Several processes need a shared cache (without one gunicorn.conf.py starts one process).
        "CACHE_URL": "redis://127.0.0.1:6379/14",
        "WEB_THREADS": "4",
    }
    for args in (["migrate", "--noinput", "-v0"], ["collectstatic", "--noinput", "-v0"]):
        subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True, timeout=120)
    log = open(tmp_path / "gunicorn.log", "w")
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "deploy/gunicorn.conf.py", "webapp.wsgi"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"{url}/healthz", timeout=2).read()
            break
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            assert process.poll() is None, (tmp_path / "gunicorn.log").read_text()
            assert time.monotonic() < deadline, "gunicorn did not start"
            time.sleep(0.2)
    yield url, tmp_path / "gunicorn.log"
    process.terminate()
    process.wait(20)
    log.close()


def test_gunicorn_serves_the_pages_and_the_collected_static_files(gunicorn):
    url, log = gunicorn
    with urllib.request.urlopen(f"{url}/", timeout=10) as response:
        assert response.status == 200 and b"AskTwice" in response.read()
    with urllib.request.urlopen(f"{url}/static/core/site.css", timeout=10) as response:
        assert response.status == 200 and response.headers["Content-Type"].startswith("text/css")
        assert response.read() == (ROOT / "static" / "core" / "site.css").read_bytes()
    text = log.read_text()
    assert "Booting worker" in text and text.count("Booting worker") == 2, text
