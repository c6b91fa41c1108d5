"""Screenshot of the Review page after a few decisions, in a real browser.

``python bench/review_screenshot.py`` starts the app on a free port (review
store and model folder in a temporary directory), trains a 2-epoch model on the
pump sample through the Train page, confirms one event (tagged "sensor fault" and a tag
of its own) and dismisses another on the Review page, comments on the third, and writes
``bench/results/screenshots/review.png``.
Needs Playwright and chromium (``$AEVIZ_CHROMIUM``, else ``/usr/bin/chromium``).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.test_browser import SHOTS, review_desk, wait_idle  # noqa: E402


def add_tags(page, *tags: str) -> None:
    box = page.locator('[data-testid="stMultiSelect"] input').first
    for tag in tags:
        box.click()
        box.fill(tag)
        page.keyboard.press("Enter")
    page.keyboard.press("Escape")


def decide(page, action: str, note: str, tags=()) -> None:
    page.get_by_label("Note").fill(note)
    if tags:
        add_tags(page, *tags)
    page.get_by_role("button", name=action).click()
    page.wait_for_selector("text=saved by", timeout=60_000)
    wait_idle(page)


def main() -> Path:
    tmp = Path(tempfile.mkdtemp(prefix="aeviz-review-shot-"))
    with review_desk(tmp, reviewer="ana", height=2600) as page:  # a trained model, the Review page open
        decide(page, "Confirm anomaly", "vibration on both bearings, maintenance informed",
               tags=("sensor fault", "bearing"))
        decide(page, "Dismiss: false alarm", "pump start-up, expected", tags=("known behaviour",))
        heading = page.locator("h3", has_text="Event 3 of").first
        heading.wait_for()
        page.get_by_text("Comments (0)").click()
        page.get_by_label("Add a comment").fill("Same pattern as last Tuesday? Ask the night shift.")
        page.get_by_role("button", name="Post comment").click()
        page.wait_for_selector("text=Comments (1)", timeout=60_000)
        wait_idle(page)
        page.evaluate("document.activeElement && document.activeElement.blur()")  # off the note field
        page.keyboard.press("j")  # the Next button's shortcut
        page.wait_for_selector('h3:has-text("Event 4 of")', timeout=60_000)
        page.keyboard.press("k")
        page.wait_for_selector('h3:has-text("Event 3 of")', timeout=60_000)
        wait_idle(page)
        page.wait_for_timeout(1500)  # let the charts finish drawing
        if page.locator('[data-testid="stException"]').count():
            raise RuntimeError(page.locator('[data-testid="stException"]').first.inner_text())
        SHOTS.mkdir(parents=True, exist_ok=True)
        out = SHOTS / "review.png"
        page.screenshot(path=str(out), full_page=True)
    return out


if __name__ == "__main__":
    print(main())
