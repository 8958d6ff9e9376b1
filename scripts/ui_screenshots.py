"""Screenshots of every dashboard page of `codecoop ui --demo`, for docs/ui/ (run: python scripts/ui_screenshots.py).

Runs the demo federation to its end, runs the audit from its page, and saves one full-page PNG per
page with Debian's headless Chromium (the same way tests/ui/test_browser.py drives it).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGES = [
    ("overview", "/"), ("rounds", "/rounds"), ("round", "/rounds/2"), ("members", "/members"), ("proposals", "/proposals"),
    ("models", "/models"), ("node", "/node"),
]  # fmt: skip


def main() -> int:
    from playwright.sync_api import sync_playwright

    from codecoop.ui.app import create_app
    from codecoop.ui.demo import DemoFederation
    from codecoop.ui.serve import CHROMIUM_ARGS, BackgroundServer

    out = ROOT / "docs" / "ui"
    out.mkdir(parents=True, exist_ok=True)
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    with DemoFederation(log=print) as demo:
        db = demo.start().start()
        if not demo.done.wait(900) or demo.error:
            print(f"the demo federation did not finish: {demo.error}", file=sys.stderr)
            return 1
        with BackgroundServer(create_app(db)) as server, sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1300, "height": 900})
            proposals = sorted(db.ledger.proposals.values(), key=lambda p: p.block)
            for name, path in [*PAGES, ("proposal", f"/proposals/{proposals[0].id}")]:
                page.goto(server.url + path)
                page.wait_for_selector("#live-dot.on", state="attached", timeout=20_000)
                page.wait_for_timeout(500)  # charts drawn
                page.screenshot(path=str(out / f"{name}.png"), full_page=True)
                print(f"docs/ui/{name}.png")
            page.goto(server.url + "/audit")
            page.check("#audit-form input[name=recompute]")
            page.click("#audit-form button")
            page.wait_for_selector("#audit-verdict", timeout=300_000)
            page.screenshot(path=str(out / "audit.png"), full_page=True)
            print("docs/ui/audit.png")
            browser.close()
        db.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
