"""Headless Chromium for the report tests: the Debian packages ``chromium`` and
``chromium-driver`` driven by selenium with the driver's path given, so that nothing is
downloaded (selenium-manager is never asked)."""

from __future__ import annotations

import shutil
from pathlib import Path

DRIVER_PATHS = ("/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver")
BROWSER_PATHS = ("/usr/bin/chromium", "/usr/bin/chromium-browser")


def why_unavailable() -> str | None:
    """None when a headless Chromium can be started, else the reason."""
    import importlib.util

    if importlib.util.find_spec("selenium") is None:  # not imported: the caller may run the browser elsewhere
        return "selenium is not installed (pip install -r requirements-dev.txt)"
    if not any(Path(p).is_file() for p in DRIVER_PATHS) and not shutil.which("chromedriver"):
        return "chromedriver not found (apt-get install chromium chromium-driver; .ci/run installs them)"
    if not any(Path(p).is_file() for p in BROWSER_PATHS) and not shutil.which("chromium"):
        return "chromium not found (apt-get install chromium chromium-driver; .ci/run installs them)"
    return None


def start(width: int = 1280, height: int = 900):
    """A headless Chromium webdriver with browser console logs enabled."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    driver_path = next((p for p in DRIVER_PATHS if Path(p).is_file()), None) or shutil.which("chromedriver")
    browser = next((p for p in BROWSER_PATHS if Path(p).is_file()), None) or shutil.which("chromium")
    opts = webdriver.ChromeOptions()
    opts.binary_location = browser
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        f"--window-size={width},{height}",
        "--allow-file-access-from-files",
        "--hide-scrollbars",
    ):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(executable_path=driver_path), options=opts)


def full_page_screenshot(driver, path: str | Path, width: int) -> None:
    """Resize the window to the page's height and save a screenshot."""
    height = driver.execute_script("return Math.max(document.body.scrollHeight, document.documentElement.scrollHeight)")
    driver.set_window_size(width, min(int(height) + 20, 6000))
    driver.save_screenshot(str(path))
