"""Screenshots of every page at desktop and phone widths, into docs/screenshots/.

    python docs/screenshots.py [--out docs/screenshots]

Serves the app as `make run` does (runserver, a throw-away SQLite database, the demo event with its
questions and flags), signs in as the demo moderator, and takes each page in Debian's Chromium
(never a downloaded browser) at 1280 x 800 and 390 x 844. The README shows them.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.embedded import Served  # noqa: E402 (after the path)

PAGES = {
    "home": "/",
    "attendee": "/e/DEMO/",
    "moderate": "/e/DEMO/moderate/",
    "present": "/e/DEMO/present/",
    "dashboard": "/e/DEMO/dashboard/",
    "events": "/events/",
    "moderators": "/e/DEMO/moderators/",
    "models": "/models/",
}
SIZES = {"desktop": (1280, 800), "phone": (390, 844)}


def take(out: Path) -> list[Path]:
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        served = Served(Path(tmp), f"sqlite:///{Path(tmp) / 'db.sqlite3'}", create=False)
        try:
            served.manage("migrate", "--noinput")
            password = re.search(r"demo / (\S+)", served.manage("seed_demo", "--reset-password")).group(1)
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path="/usr/bin/chromium")
                written = [shot for size in SIZES for shot in _size(browser, served.url, size, password, out)]
                browser.close()
        finally:
            served.stop()
    return written


def _size(browser, url: str, size: str, password: str, out: Path) -> list[Path]:
    width, height = SIZES[size]
    context = browser.new_context(base_url=url, viewport={"width": width, "height": height})
    page = context.new_page()
    page.goto("/accounts/login/")
    written = [_shot(page, out / f"login-{size}.png", size)]
    page.fill("#id_username", "demo")
    page.fill("#id_password", password)
    page.press("#id_password", "Enter")
    page.wait_for_load_state("networkidle")
    for name, path in PAGES.items():
        page.goto(path)
        page.wait_for_load_state("networkidle")
        page.wait_for_timeout(800)  # the first poll's answer drawn
        written.append(_shot(page, out / f"{name}-{size}.png", size))
        if name == "attendee":  # the answered questions, with their answers, are a tab of their own
            page.get_by_role("tab", name="Answered").click()
            written.append(_shot(page, out / f"attendee-answered-{size}.png", size))
    context.close()
    return written


def _shot(page, target: Path, size: str) -> Path:
    page.screenshot(path=str(target), full_page=size == "phone")
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python docs/screenshots.py", description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "docs" / "screenshots"))
    args = parser.parse_args(argv)
    for path in take(Path(args.out)):
        print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
