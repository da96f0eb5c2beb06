"""report.html in real headless Chromium (Debian packages chromium + chromium-driver; `make test` installs
them with scripts/ensure_chromium.sh): no console errors, every image loads, the gallery holds every
planned item (failed ones shown), the category filter works, OCR text sits under each image."""

import shutil
import tempfile
from pathlib import Path

import pytest

import evalsuite
from evalsuite.report import write_report

CHROMIUM, DRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")


@pytest.fixture(scope="module")
def report_with_failures(scored_demo_run, tmp_path_factory):
    """The scored demo run plus a folder backend holding one image of twelve: eleven real 'failed' items."""
    d = tmp_path_factory.mktemp("html")
    run = d / "run"
    shutil.copytree(scored_demo_run, run)
    imports = d / "imports"
    imports.mkdir()
    src = next((run / "items" / "reference" / "neon-open-24").glob("s0-*.png"))
    shutil.copy(src, imports / "neon-open-24_0.png")
    evalsuite.run(f"folder:{imports}", "smoke", run_dir=run, progress=False, log=lambda m: None, score=False)
    rep = write_report([run], d / "report", progress=False, log=lambda m: None)
    return rep


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    # The project's set-up installs them (make test -> scripts/ensure_chromium.sh): missing is a failure.
    assert CHROMIUM.exists() and DRIVER.exists(), "chromium/chromium-driver missing: run sh scripts/ensure_chromium.sh"
    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    o = Options()
    o.binary_location = str(CHROMIUM)
    for a in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
              "--disable-component-update", "--no-first-run", f"--user-data-dir={profile}", "--window-size=1400,1000"):
        o.add_argument(a)
    o.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    d = webdriver.Chrome(service=Service(str(DRIVER)), options=o)
    d.set_page_load_timeout(30)
    yield d
    d.quit()
    shutil.rmtree(profile, ignore_errors=True)


def _load_all_images(d) -> list:
    """Scroll every image into view (they are lazy) and wait until each finished loading."""
    from selenium.webdriver.support.ui import WebDriverWait

    d.execute_script("document.querySelectorAll('img').forEach(function(i){i.loading='eager';});")
    for i in range(d.execute_script("return document.images.length")):
        d.execute_script("document.images[arguments[0]].scrollIntoView();", i)
    WebDriverWait(d, 20).until(lambda x: x.execute_script(
        "return Array.from(document.images).every(function(i){return i.complete;})"))
    return d.execute_script("return Array.from(document.images).map(function(i){return [i.alt, i.naturalWidth];})")


def test_report_in_headless_chromium(report_with_failures, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    d = browser
    d.get(report_with_failures.html.resolve().as_uri())
    imgs = _load_all_images(d)
    assert len(imgs) >= 19                                   # 18 + 1 thumbnails, charts, worst items
    assert [a for a, w in imgs if w == 0] == []               # every image loaded
    severe = [e for e in d.get_log("browser") if e["level"] == "SEVERE"]
    assert severe == []

    items = d.find_elements(By.CSS_SELECTOR, ".item")
    assert len(items) == 30                                   # flux-tiny 12, reference 6, folder 12 (11 failed)
    status = [i.get_attribute("data-status") for i in items]
    assert status.count("failed") == 11 and status.count("ok") == 19
    failed = d.find_elements(By.CSS_SELECTOR, '.item[data-status="failed"] .ph')
    assert len(failed) == 11 and "no file" in failed[0].text
    # reference vs flux-tiny side by side (same table row = same seed), OCR text under each image
    row = d.find_element(By.CSS_SELECTOR, "#p-cafe-chalkboard table.grid tr:nth-child(2)")
    cells = row.find_elements(By.CSS_SELECTOR, ".item")
    assert [c.get_attribute("data-backend") for c in cells][:2] == ["flux-tiny", "reference"]
    ref = row.find_element(By.CSS_SELECTOR, '.item[data-backend="reference"]')
    assert "OCR: FRESH COFFEE" in ref.find_element(By.CSS_SELECTOR, ".ocr").text
    assert "text exact: yes" in ref.text and "CLIP score, prompt following: missing" in ref.text
    assert "(noise)" in row.find_element(By.CSS_SELECTOR, '.item[data-backend="flux-tiny"]').text
    assert "numbers are noise, not quality" in d.find_element(By.CSS_SELECTOR, ".banner").text

    # category filter: compositional shows flux-tiny's 6 items and the folder backend's 6 (failed) ones
    Select(d.find_element(By.ID, "cat-filter")).select_by_value("compositional")
    visible = [i for i in d.find_elements(By.CSS_SELECTOR, ".item") if i.is_displayed()]
    assert len(visible) == 12 and d.find_element(By.ID, "shown-count").text == "12"
    assert not d.find_element(By.ID, "p-neon-open-24").is_displayed()
    Select(d.find_element(By.ID, "cat-filter")).select_by_value("all")
    assert len([i for i in d.find_elements(By.CSS_SELECTOR, ".item") if i.is_displayed()]) == 30

    # worst items list only items below perfect (issue 12): flux-tiny's 6 text items, never reference's 1.00s
    worst = d.find_elements(By.CSS_SELECTOR, "#worst ~ div.worst .worst-item")
    assert len(worst) == 6 and all(w.text.startswith("flux-tiny") for w in worst)
    # the page is looked at by people: keep a screenshot of the top for the record
    d.set_window_size(1400, 2400)
    assert d.save_screenshot(str(tmp_path / "report.png"))
    assert (tmp_path / "report.png").stat().st_size > 10_000
