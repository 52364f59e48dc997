"""A real headless Chromium (Debian's chromium and chromium-driver, installed by
scripts/browser) driven by Selenium against live servers."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

SCREENSHOTS = os.environ.get("MNEMO_UI_SCREENSHOTS")  # e.g. docs/img: keep the pictures


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if not chromium or not driver_path:
        pytest.skip("no chromium/chromedriver: run scripts/browser (Debian) to test the viewer")
    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must not fetch anything
    from selenium import webdriver

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--window-size=1280,900",
        "--disable-gpu",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(
        options=options, service=webdriver.ChromeService(executable_path=driver_path)
    )
    driver.implicitly_wait(0)
    try:
        yield driver
    finally:
        driver.quit()


def screenshot(driver: object, tmp_path: Path, name: str) -> Path:
    """A PNG of the page: under tmp_path, and under $MNEMO_UI_SCREENSHOTS when set."""
    path = tmp_path / f"{name}.png"
    driver.save_screenshot(str(path))  # type: ignore[attr-defined]
    if SCREENSHOTS:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(SCREENSHOTS) / f"viewer-{name}.png")
    assert path.stat().st_size > 10_000  # a rendered page, not a blank one
    return path
