"""axe-core in a Playwright page: the WCAG 2.x A and AA rules, from the copy in tests/vendor/axe-core/
(never fetched at test time)."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from playwright.sync_api import Page

AXE_JS = Path(__file__).resolve().parent / "vendor" / "axe-core" / "axe.min.js"
WCAG_TAGS = ("wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22a", "wcag22aa")
# What fails a test; minor and moderate findings are printed.
BLOCKING = frozenset({"serious", "critical"})

RUN_AXE = """async (tags) => {
  const results = await axe.run(document, {runOnly: {type: "tag", values: tags}, resultTypes: ["violations"]});
  return results.violations.map(v => ({
    id: v.id, impact: v.impact, help: v.help, helpUrl: v.helpUrl,
    nodes: v.nodes.map(n => ({target: n.target, summary: n.failureSummary})),
  }));
}"""


@cache
def _axe_source() -> str:
    return AXE_JS.read_text(encoding="utf-8")


def axe_violations(page: Page) -> list[dict[str, Any]]:
    """Run axe on the page as it is now; its violations (id, impact, help, nodes' targets)."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        # Not page.add_script_tag: it inserts an inline <script>, which the app's CSP (script-src
        # 'self') blocks. evaluate runs the code through the DevTools protocol, outside the page's CSP,
        # and leaves the policy the app sends untouched.
        page.evaluate(_axe_source())
    return page.evaluate(RUN_AXE, list(WCAG_TAGS))


def describe(violations: list[dict[str, Any]]) -> str:
    """One line per violation and one per offending node: what a failing test prints."""
    lines = []
    for v in violations:
        lines.append(f"[{v['impact']}] {v['id']}: {v['help']} ({v['helpUrl']})")
        for node in v["nodes"]:
            summary = " ".join((node["summary"] or "").split())
            lines.append(f"    {' '.join(map(str, node['target']))}  -- {summary}")
    return "\n".join(lines)


def assert_accessible(page: Page, where: str = "") -> list[dict[str, Any]]:
    """Fail on any serious or critical violation; print (and return) the lesser ones."""
    violations = axe_violations(page)
    blocking = [v for v in violations if v["impact"] in BLOCKING]
    lesser = [v for v in violations if v["impact"] not in BLOCKING]
    if lesser:
        print(f"axe, minor or moderate on {where or page.url}:\n{describe(lesser)}")
    assert not blocking, f"axe found serious or critical violations on {where or page.url}:\n{describe(blocking)}"
    return lesser
