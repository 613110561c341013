"""Checks of the report in a real headless Chromium (the Debian ``chromium`` and
``chromium-driver`` packages through selenium, nothing downloaded). Not collected by the
main run (no ``test_`` prefix): ``tests/test_report.py::test_in_headless_chromium`` runs
this file in a pytest process of its own."""

from __future__ import annotations

import pytest
from test_report import _report, small_set  # noqa: F401  (small_set is a fixture)


@pytest.fixture(scope="module")
def browser():
    import chromium

    why = chromium.why_unavailable()
    if why:
        pytest.skip(f"headless Chromium unavailable: {why}")
    driver = chromium.start(1280, 900)
    yield driver
    driver.quit()


def _severe(driver) -> list:
    return [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]


def _all_images_loaded(driver) -> None:
    broken = driver.execute_script(
        "return Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src);"
    )
    assert broken == []


def test_in_headless_chromium(small_set, tmp_path, browser):  # noqa: F811
    from selenium.webdriver.common.by import By

    folder, gen, paths = small_set
    out = tmp_path / "rep"
    assert _report(folder, paths, out, "--pages", 2, "--images", folder / "xr").exit_code == 0
    browser.get((out / "index.html").as_uri())
    _all_images_loaded(browser)
    assert browser.execute_script("return document.images.length") >= 4
    assert browser.find_element(By.ID, "leaderboard").is_displayed()
    assert browser.find_element(By.CSS_SELECTOR, "#leaderboard td[data-mean]").is_displayed()
    assert _severe(browser) == []

    browser.find_element(By.CSS_SELECTOR, "#worst a.tile").click()
    assert browser.current_url.endswith("p000-page.html")
    _all_images_loaded(browser)
    errors = browser.find_element(By.ID, "layer-errors")
    gt = browser.find_element(By.ID, "layer-gt")
    first = errors.find_element(By.TAG_NAME, "img")
    assert first.is_displayed() and not gt.find_element(By.TAG_NAME, "img").is_displayed()
    browser.find_element(By.CSS_SELECTOR, "input.layer-toggle[value=errors]").click()
    assert not first.is_displayed()  # toggling a layer hides it
    browser.find_element(By.CSS_SELECTOR, "input.layer-toggle[value=gt]").click()
    assert gt.find_element(By.TAG_NAME, "img").is_displayed()
    # class filter: only that class's pictures stay
    browser.execute_script(
        "var s = document.getElementById('class-filter'); s.value = '28';s.dispatchEvent(new Event('change'));"
    )
    shown = [i.get_attribute("data-cls") for i in gt.find_elements(By.TAG_NAME, "img") if i.is_displayed()]
    assert shown == ["28"]
    # opacity and zoom
    browser.execute_script(
        "var o = document.getElementById('opacity'); o.value = 30;o.dispatchEvent(new Event('input'));"
    )
    assert browser.execute_script("return document.getElementById('layers').style.opacity") == "0.3"
    browser.find_element(By.ID, "zoom").click()
    assert "scale(" in browser.find_element(By.ID, "stage").get_attribute("style")
    assert browser.find_element(By.CSS_SELECTOR, "img.wristbase").is_displayed()
    assert _severe(browser) == []


@pytest.mark.parametrize("width", [1280, 1920])
def test_layout_fits_the_window(small_set, tmp_path, browser, width):  # noqa: F811
    """At 1280 and 1920 px: no page scrolls sideways, the image and its Dice table sit side
    by side, and the image fits in the window's height."""
    from selenium.webdriver.common.by import By

    folder, gen, paths = small_set
    out = tmp_path / "rep"
    assert _report(folder, paths, out, "--pages", 1, "--images", folder / "xr").exit_code == 0
    browser.set_window_size(width, 1000)
    try:
        for page in (out / "index.html", out / "images" / "p000-page.html"):
            browser.get(page.as_uri())
            _all_images_loaded(browser)
            wide = browser.execute_script("return [document.documentElement.scrollWidth, window.innerWidth]")
            assert wide[0] <= wide[1], (page.name, wide)
        viewer = browser.find_element(By.ID, "viewer").rect
        table = browser.find_element(By.ID, "image-table").rect
        assert table["x"] >= viewer["x"] + viewer["width"]  # beside, not below
        assert viewer["y"] + viewer["height"] <= browser.execute_script("return window.innerHeight") + 1
        assert _severe(browser) == []
    finally:
        browser.set_window_size(1280, 900)


def test_quality_page_in_headless_chromium(small_set, tmp_path, browser):  # noqa: F811
    """The page without ground truth: its pictures load, the two heat maps sit side by side at
    1280 px, nothing scrolls sideways, a flag's link opens its image page, no console error."""
    from selenium.webdriver.common.by import By

    folder, gen, paths = small_set
    out = tmp_path / "rep"
    assert _report(folder, paths, out, "--pages", 2, "--images", folder / "xr", "--quality").exit_code == 0
    browser.get((out / "index.html").as_uri())
    browser.find_element(By.CSS_SELECTOR, "#quality-link a").click()
    assert browser.current_url.endswith("quality.html")
    _all_images_loaded(browser)
    figures = browser.find_elements(By.CSS_SELECTOR, ".pair img.chart")
    assert len(figures) == 2 and figures[1].rect["x"] >= figures[0].rect["x"] + figures[0].rect["width"]
    assert abs(figures[1].rect["y"] - figures[0].rect["y"]) < 2  # aligned
    wide = browser.execute_script("return [document.documentElement.scrollWidth, window.innerWidth]")
    assert wide[0] <= wide[1]
    links = browser.find_elements(By.CSS_SELECTOR, "table.qa-flags a")
    assert links, "no flag of an image with a page"
    browser.execute_script("arguments[0].closest('details').open = true;", links[0])
    links[0].click()
    assert "/images/p00" in browser.current_url
    _all_images_loaded(browser)
    assert _severe(browser) == []


def test_a_report_of_mixed_non_square_sizes_fits_the_window(tmp_path, browser):
    """``demo --task kaggle``'s report: the pages of a tall and of a wide image load every
    picture, the viewer has the image's own shape and fits the window's height beside its
    table, nothing scrolls sideways, no console error."""
    from helpers import run_cli
    from selenium.webdriver.common.by import By

    folder = tmp_path / "k"
    assert run_cli("demo", folder, "--task", "kaggle", "--images", 6, "-q").exit_code == 0
    pages = sorted((folder / "report" / "images").glob("p*-page.html"))
    shapes = set()
    for page in pages:
        browser.get(page.as_uri())
        _all_images_loaded(browser)
        viewer = browser.find_element(By.ID, "viewer")
        h, w = int(viewer.get_attribute("data-height")), int(viewer.get_attribute("data-width"))
        shapes.add("tall" if h > w else "wide")
        rect, table = viewer.rect, browser.find_element(By.ID, "image-table").rect
        assert abs(rect["height"] / rect["width"] - h / w) < 0.02, (page.name, rect, h, w)
        assert rect["y"] + rect["height"] <= browser.execute_script("return window.innerHeight") + 1, page.name
        assert table["x"] >= rect["x"] + rect["width"], page.name
        wide = browser.execute_script("return [document.documentElement.scrollWidth, window.innerWidth]")
        assert wide[0] <= wide[1], (page.name, wide)
        assert _severe(browser) == []
    assert shapes == {"tall", "wide"}
