"""The page in Debian's headless Chromium (Selenium) on the MNI template: pixels drawn, scroll,
box -> LiteMedSAM mask, accept -> the written file's geometry and content.

Set SAMTUNE_VIEW_SHOTS=DIR to keep the screenshots it checks.
"""

from __future__ import annotations

import io
import os
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

selenium = pytest.importorskip("selenium", reason="selenium is not installed (pip install 'samtune[test]')")
CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(not (CHROMIUM and DRIVER), reason="Debian's chromium and chromium-driver are not "
                                "installed (apt-get install chromium chromium-driver; .ci/run does it where it can)")
START = 94  # the middle axial slice the page opens on (189 // 2)


@pytest.fixture(scope="module")
def mni_case(tmp_path_factory):
    """images/mni.nii.gz (the T1 template), labels/ (white matter >= 0.5) and preds/ (a wrong copy)."""
    from scipy import ndimage

    from samtune.assets import mni_template
    from samtune.data.readers import read_image, write_image

    root = tmp_path_factory.mktemp("mni_view")
    for name in ("images", "labels", "preds"):
        (root / name).mkdir()
    shutil.copy(mni_template("t1"), root / "images" / "mni.nii.gz")
    wm = read_image(mni_template("wm"))
    gt = (wm.array >= 0.5).astype(np.uint8)
    pred = ndimage.binary_erosion(gt, iterations=2).astype(np.uint8)  # misses the rim: false negatives
    pred[:, :, :70] |= ndimage.binary_dilation(gt, iterations=3)[:, :, :70]  # spills over on one side: FP
    write_image(root / "labels" / "mni.nii.gz", gt, wm.geometry)
    write_image(root / "preds" / "mni.nii.gz", pred, wm.geometry)
    return root, gt, pred, wm.geometry


@pytest.fixture(scope="module")
def served(mni_case, tmp_path_factory):
    """The page served by uvicorn in a thread (LiteMedSAM zero-shot for prompts)."""
    import uvicorn

    from samtune.view import build_app, open_view
    from samtune.view.server import bind

    root = mni_case[0]
    corrections = tmp_path_factory.mktemp("corrections") / "fixes"
    state = open_view(root / "preds", images=root / "images", gt=root / "labels", corrections=corrections,
                      model="lite_medsam")
    sock = bind("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(build_app(state), log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}/", state, corrections
    server.should_exit = True
    thread.join(10)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1280,800",
                 "--force-device-scale-factor=1", f"--user-data-dir={tmp_path_factory.mktemp('chromium')}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    yield driver
    driver.quit()


def wait_for(driver, script: str, timeout: float = 120.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = driver.execute_script(script)
        if value:
            return value
        time.sleep(0.05)
    status = driver.execute_script("return document.getElementById('status').textContent")
    raise AssertionError(f"timed out waiting for: {script}; page status: {status}")


def canvas_pixels(driver, name: str) -> np.ndarray:
    """The canvas region of a screenshot, RGB [H, W, 3] int."""
    from selenium.webdriver.common.by import By

    shot = driver.get_screenshot_as_png()
    if os.environ.get("SAMTUNE_VIEW_SHOTS"):
        Path(os.environ["SAMTUNE_VIEW_SHOTS"], f"{name}.png").write_bytes(shot)
    image = np.asarray(Image.open(io.BytesIO(shot)).convert("RGB")).astype(int)
    r = driver.find_element(By.ID, "canvas").rect
    return image[int(r["y"]): int(r["y"] + r["height"]), int(r["x"]): int(r["x"] + r["width"])]


def colour_counts(pixels: np.ndarray) -> dict[str, int]:
    r, g, b = pixels[..., 0], pixels[..., 1], pixels[..., 2]
    grey = (np.abs(r - g) < 4) & (np.abs(g - b) < 4)
    return {
        "brain": int((grey & (r > 60)).sum()),                        # the T1 image, no overlay
        "agree": int(((g > r + 20) & (g > b + 15)).sum()),            # pale green: prediction = truth
        "fp": int(((r > g + 80) & (r > b + 80)).sum()),               # red: prediction only
        "fn": int(((b > r + 80) & (b > g + 30)).sum()),               # blue: missed
        "mask": int(((r > b + 80) & (g > b + 50)).sum()),             # yellow: class 1 of the correction
    }


def test_review_scroll_box_accept(browser, served, mni_case):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.actions.wheel_input import ScrollOrigin
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    from samtune.data.readers import read_image

    url, state, corrections = served
    root, gt, pred, geometry = mni_case
    browser.get(url)
    wait_for(browser, f"return document.body.dataset.drawn === 'mni/0/{START}'")
    first = canvas_pixels(browser, "view_review")
    counts = colour_counts(first)
    # slice 94 of the template: brain tissue in grey, the difference overlay in its three colours
    assert counts["brain"] > 5000 and counts["agree"] > 5000, counts
    assert counts["fp"] > 300 and counts["fn"] > 300, counts
    legend = browser.find_element(By.ID, "legend").text
    assert "false positive" in legend and "false negative" in legend

    canvas = browser.find_element(By.ID, "canvas")
    for _ in range(3):
        ActionChains(browser).scroll_from_origin(ScrollOrigin.from_element(canvas), 0, 120).perform()
    wait_for(browser, f"return document.body.dataset.drawn === 'mni/0/{START + 3}'")
    index = START + 3
    assert np.abs(canvas_pixels(browser, "view_scrolled") - first).sum() > 1000  # another slice is drawn

    # Window/level: the CT brain preset (80/40) saturates this T1's tissue (values up to ~230) to white.
    Select(browser.find_element(By.ID, "overlay")).select_by_value("none")
    auto = canvas_pixels(browser, "view_no_overlay")
    Select(browser.find_element(By.ID, "preset")).select_by_value("ct-brain")
    assert browser.find_element(By.ID, "ww").get_attribute("value") == "80"
    time.sleep(0.3)
    brain = canvas_pixels(browser, "view_ct_brain")
    assert (brain[..., 0] == 255).sum() > 3 * max(1, (auto[..., 0] == 255).sum()) + 1000
    Select(browser.find_element(By.ID, "preset")).select_by_value("auto")

    # Clear the slice (the correction starts as the prediction), undo, clear again: then only the
    # model's mask for the box can be drawn in the correction's colour.
    Select(browser.find_element(By.ID, "overlay")).select_by_value("work")
    wait_for(browser, "return document.body.dataset.state === 'idle'")
    before = colour_counts(canvas_pixels(browser, "view_correction"))["mask"]
    assert before > 5000
    browser.find_element(By.ID, "clear").click()
    wait_for(browser, "return window.samtune.undo.length === 1")
    time.sleep(0.3)
    assert colour_counts(canvas_pixels(browser, "view_cleared"))["mask"] == 0
    browser.find_element(By.ID, "undo").click()
    wait_for(browser, "return window.samtune.undo.length === 0")
    time.sleep(0.3)
    assert colour_counts(canvas_pixels(browser, "view_undone"))["mask"] == before
    browser.find_element(By.ID, "clear").click()
    wait_for(browser, "return window.samtune.undo.length === 1")

    ActionChains(browser).move_to_element_with_offset(canvas, -50, -60).click_and_hold() \
        .move_by_offset(50, 60).move_by_offset(50, 60).release().perform()
    wait_for(browser, "return window.samtune.prompts >= 1 && document.body.dataset.state === 'idle'")
    box = browser.execute_script("return window.samtune.prompt.box")
    assert box[2] - box[0] > 20 and box[3] - box[1] > 20
    pixels = canvas_pixels(browser, "view_box")
    drawn = colour_counts(pixels)
    assert drawn["mask"] > 200, drawn  # the model's mask drawn as the correction (class 1, yellow)
    r, g, b = pixels[..., 0], pixels[..., 1], pixels[..., 2]
    ys, xs = np.nonzero((r > b + 80) & (g > b + 50))
    cy, cx = pixels.shape[0] / 2, pixels.shape[1] / 2  # the drag went from centre-(50, 60) to centre+(50, 60)
    assert xs.min() >= cx - 53 and xs.max() <= cx + 53 and ys.min() >= cy - 63 and ys.max() <= cy + 63

    # A brush stroke left of the box (size 3: a disc of radius 2 pixels per mouse position).
    browser.find_element(By.CSS_SELECTOR, "[data-tool=brush]").click()
    size = browser.find_element(By.ID, "brush-size")
    size.clear()
    size.send_keys("3")
    ActionChains(browser).move_to_element_with_offset(canvas, -160, 0).click_and_hold() \
        .move_by_offset(10, 0).move_by_offset(10, 0).move_by_offset(10, 0).release().perform()
    wait_for(browser, "return window.samtune.undo.length === 3 && document.body.dataset.state === 'idle'")

    browser.find_element(By.ID, "accept").click()
    written = wait_for(browser, "return window.samtune.accepted")
    assert written["mask"] == str(corrections / "labels" / "mni.nii.gz")
    saved = read_image(written["mask"])
    assert saved.array.shape == gt.shape and saved.geometry.close_to(geometry, atol=1e-5)
    # The written slice: the prediction plus LiteMedSAM's mask for the drawn box, computed again here.
    predictor = state.prompts.predictor()
    t1 = state.store.get("mni").image.array
    mask = predictor.predict_image(t1[index], box=box, value_range=predictor.value_range(t1))
    assert mask.sum() > 50
    rows, cols = np.nonzero(mask)
    assert cols.min() >= box[0] - 2 and cols.max() <= box[2] + 2 and rows.min() >= box[1] - 2 and rows.max() <= box[3] + 2
    expected = pred.copy()
    expected[index] = mask
    stroke = (saved.array[index] > 0) & (mask == 0)
    rows, cols = np.nonzero(stroke)
    assert stroke.sum() > 20 and rows.max() - rows.min() <= 5 and cols.max() < box[0], (rows, cols)
    expected[index][stroke] = 1
    np.testing.assert_array_equal(saved.array, expected)


def test_the_page_works_with_a_token(browser, view_data, tmp_path):
    """A token server (as for a non-loopback --host): the page opened with the printed URL loads its
    script through the cookie and its data through the header; without the token nothing is served."""
    import uvicorn

    from samtune.view import build_app, open_view
    from samtune.view.server import bind, page_url

    state = open_view(view_data["root"] / "eval", token="t0ken-for-the-test", corrections=tmp_path / "fixes",
                      prompt=False)
    sock = bind("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(build_app(state), log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        while not server.started:
            time.sleep(0.02)
        url = page_url(sock, "127.0.0.1", "t0ken-for-the-test")
        browser.delete_all_cookies()
        browser.get(url.split("?")[0])
        assert "token missing or wrong" in browser.page_source
        browser.get(url)
        wait_for(browser, "return document.body.dataset.drawn === 'vol/0/5'")  # worst case first, middle slice
        counts = colour_counts(canvas_pixels(browser, "view_token"))
        assert counts["fp"] > 100 and counts["fn"] > 100, counts
    finally:
        server.should_exit = True
        thread.join(10)
