"""End to end in a real headless Chromium: photos in, train, generate, evaluate, blind test, one selfie;
a screenshot per tab.

Drives Debian's Chromium (``scripts/setup.sh --test`` installs it) with Playwright; nothing is downloaded. The
screenshots land in ``test-artifacts/ui/``; with ``WORKBENCH_UPDATE_SCREENSHOTS=1`` they are also copied to
``docs/screenshots/`` for the README.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest

from workbench.workspace import Workspace

CHROMIUM = os.environ.get("WORKBENCH_CHROMIUM", "/usr/bin/chromium")
REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts" / "ui"
SCREENSHOTS = REPO / "docs" / "screenshots"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-quic", "--disable-dev-shm-usage",
]  # fmt: skip
STAGE_TIMEOUT_MS = 90_000


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def served(workspace: Workspace):
    """The app on 127.0.0.1 in this process, as ``workbench ui`` would start it."""
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    from workbench.ui.app import build_app, launch_options

    app = build_app(workspace)
    port = _free_port()
    app.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
               **launch_options(workspace))  # fmt: skip
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        app.close()


@pytest.fixture
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run scripts/setup.sh --test (it installs Debian's chromium).")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        instance = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield instance
        finally:
            instance.close()


def _shot(page, name: str, *, readme: bool = True) -> None:
    # Gallery images load lazily: bring each into view once so a full-page shot shows them.
    page.evaluate("document.querySelectorAll('img[loading=lazy]').forEach(i => { i.loading = 'eager'; })")
    page.wait_for_timeout(800)  # images decode, plots animate in
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    if readme and os.environ.get("WORKBENCH_UPDATE_SCREENSHOTS") == "1":
        from PIL import Image

        # The README's copies: a 256-colour palette keeps each ~4x smaller and commit-sized.
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        with Image.open(path) as image:
            image.convert("RGB").quantize(256).save(SCREENSHOTS / f"{name}.png", optimize=True)


def _tab(page, label: str) -> None:
    page.get_by_role("tab", name=label, exact=True).click()


def _wait_text(page, selector: str, text: str, timeout: int = STAGE_TIMEOUT_MS) -> str:
    """Wait until ``selector`` contains ``text``; fail with whatever error toast the app showed."""
    started = time.monotonic()
    deadline = started + timeout / 1000
    while time.monotonic() < deadline:
        content = page.locator(selector).inner_text()
        if text in content:
            if time.monotonic() - started > 2:
                print(f"{selector}: {text!r} after {time.monotonic() - started:.1f} s")
            return content
        toast = page.locator(".toast-body")
        if toast.count() and "error" in toast.first.inner_text().lower():
            pytest.fail(f"the app showed an error while waiting for {text!r}: {toast.first.inner_text()}")
        page.wait_for_timeout(250)
    pytest.fail(f"{selector} never showed {text!r}; it shows: {page.locator(selector).inner_text()[:500]}")


def test_whole_flow_in_a_real_browser(served: str, browser, tmp_path: Path) -> None:
    from PIL import Image, ImageFilter

    from workbench.demo import sample_photo_set

    photos = sample_photo_set(tmp_path / "photos")  # a real face (scikit-image's astronaut), 7 variations
    blurred = tmp_path / "photos" / "blurred.jpg"  # one photo intake must turn down, with advice
    Image.open(photos[0]).filter(ImageFilter.GaussianBlur(8)).save(blurred)
    photos.append(blurred)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    offsite: list[str] = []
    page.on(
        "request",
        lambda r: None if r.url.startswith(served) or r.url.startswith("data:") else offsite.append(r.url),
    )
    page.goto(served)
    page.get_by_text("Headshot Workbench").first.wait_for()

    # Subject: upload, see a verdict per photo and the set-level advice.
    page.locator("#subject-name input, #subject-name textarea").first.fill("astro")
    page.locator("#photos input[type=file]").set_input_files([str(p) for p in photos])
    page.locator("#photos").get_by_text(photos[-1].stem, exact=True).first.wait_for()
    page.locator("#intake-btn").click()
    advice = _wait_text(page, "#set-advice", "photos accepted")
    assert "of 8 photos accepted" in advice
    table = page.locator("#intake-table").inner_text()
    assert all(p.name in table for p in photos) and "accepted" in table
    assert "rejected" in table and "✗ blurred.jpg" in page.locator("#intake-gallery").inner_text()
    _shot(page, "subject")

    # Train: the tab opens on the fast demo recipe; change only the steps. The curves come from the MLflow run.
    _tab(page, "Train")
    assert page.locator("#train-rank input").input_value() == "4"  # filled from tiny-demo
    page.locator("#train-steps input").fill("4")
    page.locator("#train-steps input").press("Tab")  # Gradio reads a number field on change
    page.locator("#train-btn").click()
    assert "Done: 4 steps" in _wait_text(page, "#train-status", "Done:")
    _shot(page, "train")

    # Cancel: a longer run stops at its next step, and the page shows the state MLflow stored.
    page.locator("#train-steps input").fill("500")
    page.locator("#train-steps input").press("Tab")
    page.locator("#train-btn").click()
    _wait_text(page, "#train-status", "step ")
    page.locator("#train-cancel").click()
    assert "cancelled after" in _wait_text(page, "#train-status", "is KILLED")
    _shot(page, "train-cancelled", readme=False)

    # Generate a few images with the new LoRA (it filled the base model it was trained on).
    _tab(page, "Generate")
    count = page.locator("#gen-count input[type=number]")
    count.fill("4")
    count.press("Tab")
    page.locator("#generate-btn").click()
    _wait_text(page, "#generate-status", "images in")
    assert page.locator("#gen-gallery img").count() >= 4
    assert "seed 0" in page.locator("#gen-gallery").inner_text()
    _shot(page, "generate")

    # Evaluate the run just made; before it, the table says why it is empty.
    _tab(page, "Evaluate")
    assert "No evaluation yet" in page.locator("#group-table").inner_text()
    _shot(page, "evaluate-empty", readme=False)
    page.locator("#evaluate-btn").click()
    _wait_text(page, "#eval-summary", "evaluated against")
    _shot(page, "evaluate")

    # Runs: opening the tab lists every stage's run with its final state, and the MLflow UI command.
    _tab(page, "Runs")
    for stage in ("intake", "train", "generate", "eval", "KILLED"):
        _wait_text(page, "#runs-table", stage)
    _wait_text(page, "#mlflow-cmd", "mlflow ui")
    _shot(page, "runs")

    # Blind test: a participant answers single-image items, then scores them through the evaluation suite.
    _tab(page, "Blind test")
    page.locator("#participant input, #participant textarea").first.fill("tester-1")
    page.locator("#blind-start").click()
    _wait_text(page, "#blind-progress", "Item 1 of")
    _shot(page, "blind-test")
    for i in range(6):
        page.locator("#say-ai" if i % 2 else "#say-real").click()
        _wait_text(page, "#blind-progress", "Done" if i == 5 else f"Item {i + 2} of")
    # ...and two forced-choice pairs (a real photo and a generated image side by side).
    page.get_by_text("Two images: which one is AI?").click()
    page.locator("#blind-start").click()
    _wait_text(page, "#blind-progress", "which one is AI?")
    for i in range(6):
        page.locator("#say-right" if i % 2 else "#say-left").click()
        _wait_text(page, "#blind-progress", "Done" if i == 5 else f"Item {i + 2} of")
    page.locator("#blind-score").click()
    score = _wait_text(page, "#blind-score-text", "Two images")
    assert "Wilson CI" in score and "n = 6" in score and "d′" in score
    _shot(page, "blind-test-scored")

    # One selfie: one photo in, tuning-free headshots out, with progress from the shared job watcher.
    _tab(page, "One selfie")
    page.locator("#quick-photo input[type=file]").set_input_files(str(photos[0]))
    page.locator("#quick-photo img").first.wait_for()
    quick_count = page.locator("#quick-count input[type=number]")
    quick_count.fill("2")
    quick_count.press("Tab")
    page.locator("#quick-btn").click()
    status = _wait_text(page, "#quick-status", "first one")
    assert "2 headshots of selfie" in status and "s after the photo" in status
    assert page.locator("#quick-gallery img").count() >= 2
    _shot(page, "quick")

    assert not offsite, f"the page tried to reach other hosts: {sorted(set(offsite))[:5]}"
    _forget_leaves_no_photo_bytes(photos, tmp_path)


def _forget_leaves_no_photo_bytes(photos: list[Path], tmp_path: Path) -> None:
    """After intake through the browser, forget every subject: no file the app, the stages or the tracking
    store wrote (workspace, Gradio's upload cache, the temp folder) holds a photo's or a face crop's bytes."""
    import hashlib

    from workbench.workspace.lifecycle import forget_subject

    workspace = Workspace.resolve()
    subjects = workspace.subjects()
    assert subjects, "the browser flow made no subject"
    secrets = [p.read_bytes() for p in photos]
    for subject in subjects:
        secrets += [f.read_bytes() for f in workspace.subject_dir(subject).rglob("*")
                    if f.is_file() and f.suffix.lower() in (".jpg", ".jpeg", ".png")]  # fmt: skip
    hashes = {hashlib.sha256(b).hexdigest() for b in secrets}
    for subject in subjects:
        forget_subject(subject, workspace)
    # The app points Gradio's upload cache into the workspace (a machine-wide /tmp/gradio may hold other runs').
    upload_cache = Path(os.environ["GRADIO_TEMP_DIR"])
    assert upload_cache.is_relative_to(workspace.root)
    places = [workspace.root, tmp_path / "mlflow.db", tmp_path / "artifacts", upload_cache]
    leaks = []
    for place in places:
        files = [place] if place.is_file() else (list(place.rglob("*")) if place.is_dir() else [])
        for f in (f for f in files if f.is_file()):
            data = f.read_bytes()
            if hashlib.sha256(data).hexdigest() in hashes or any(b in data for b in secrets if len(b) > 256):
                leaks.append(f)
    assert not leaks, f"forget left the subject's photo bytes in: {leaks[:5]}"
