"""Real-browser tests: `pdl app` serves the app, Playwright drives Debian's Chromium (/usr/bin/chromium,
headless; never a browser downloaded by Playwright). They upload an image, step through the four
outputs, open every page, and save screenshots under $PDL_SCREENSHOTS (default /tmp/screens)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import apptest_utils as u
import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENS = Path(os.environ.get("PDL_SCREENSHOTS", "/tmp/screens"))
PAGES = ("Inspect", "Evaluate", "Review", "Train")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`pdl app` with a tiny random-weight bundle and a tiny synthetic data set."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (scripts/run-tests.sh does)")
    import keras

    from panoptic_deeplab.bundle import save_bundle
    from panoptic_deeplab.config import load_config
    from panoptic_deeplab.datasets.specs import get_dataset_spec
    from panoptic_deeplab.datasets.synthetic import make_synthetic_dataset
    from panoptic_deeplab.model.builder import build_model

    tmp = tmp_path_factory.mktemp("browser")
    keras.utils.set_random_seed(0)
    spec = get_dataset_spec("synthetic")
    from panoptic_deeplab.bundle import read_bundle_metadata
    from panoptic_deeplab.commands.app import default_model

    shipped = (
        default_model()
    )  # the trained demo model makes telling screenshots; else random weights
    if shipped is not None and read_bundle_metadata(shipped)[1].name == "synthetic":
        bundle = shipped
    else:
        config = load_config("synthetic/tiny")
        bundle = save_bundle(
            tmp / "demo-model", build_model(config, num_classes=spec.num_classes), config, spec
        )
    data = make_synthetic_dataset(
        tmp / "data", num_train=1, num_val=2, height=129, width=257, workers=1
    )
    port = free_port()
    log = open(tmp / "server.log", "wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "panoptic_deeplab",
            "app",
            "--port",
            str(port),
            "--model",
            str(bundle),
            "--data",
            str(data),
            "--workdir",
            str(tmp / "work"),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).status == 200:
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                log.flush()
                pytest.fail("the app did not start:\n" + (tmp / "server.log").read_text()[-3000:])
            time.sleep(0.5)
        yield {"url": url, "tmp": tmp, "data": data, "bundle": bundle}
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
        log.close()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


def wait_idle(page, timeout=120_000) -> None:
    """Wait until the script has finished its run (Streamlit marks the app element)."""
    page.wait_for_timeout(300)
    page.wait_for_selector(
        '[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=timeout
    )
    page.wait_for_timeout(300)


def assert_no_exception(page) -> None:
    errors = page.get_by_test_id("stException")
    assert errors.count() == 0, errors.first.inner_text()


def test_upload_and_step_through_the_outputs(server, browser, tmp_path):
    SCREENS.mkdir(parents=True, exist_ok=True)
    image = next((server["data"] / "val").iterdir())  # a synthetic street scene, 257x129
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(server["url"])
    wait_idle(page)
    page.screenshot(path=str(SCREENS / "inspect-empty.png"), full_page=True)
    page.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(str(image))
    page.wait_for_selector('[data-testid="stPlotlyChart"]', timeout=180_000)
    wait_idle(page)
    assert_no_exception(page)
    for stage in ("Semantic", "Centers", "Offsets", "Panoptic"):
        page.get_by_test_id("stRadio").first.get_by_text(stage, exact=True).click()
        wait_idle(page)
        assert_no_exception(page)
        chart = page.get_by_test_id("stPlotlyChart").first
        assert chart.locator(".main-svg").count() > 0  # plotly drew it
        assert chart.inner_text().find(stage) >= 0  # the figure's title names the step
        page.screenshot(path=str(SCREENS / f"inspect-{stage.lower()}.png"), full_page=True)
    # Click a pixel in the figure: the pixel inspector follows it (plotly selection -> Streamlit).
    x_input = page.get_by_role("spinbutton", name="x", exact=True)
    before = x_input.input_value()
    box = page.get_by_test_id("stPlotlyChart").first.locator(".nsewdrag").first.bounding_box()
    page.mouse.click(box["x"] + box["width"] * 0.2, box["y"] + box["height"] * 0.3)
    wait_idle(page)
    assert_no_exception(page)
    clicked = int(x_input.input_value())
    assert str(clicked) != before and abs(clicked - 0.2 * 257) <= 3
    page.screenshot(path=str(SCREENS / "inspect-pixel-click.png"), full_page=True)
    page.close()


def test_every_page_opens(server, browser):
    SCREENS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(server["url"])
    wait_idle(page)
    nav = page.get_by_test_id("stSidebarNav")
    present = [name for name in PAGES if nav.get_by_text(name, exact=True).count()]
    assert present[:2] == ["Inspect", "Evaluate"]
    for name in present:
        nav.get_by_text(name, exact=True).click()
        page.get_by_role("heading", name=name).first.wait_for(timeout=60_000)
        wait_idle(page)
        assert_no_exception(page)
        page.screenshot(path=str(SCREENS / f"page-{name.lower()}.png"), full_page=True)
    page.close()


def test_evaluate_runs_a_job_and_shows_the_analysis(server, browser):
    """Start `pdl evaluate` from the page, wait for its results, open the drill-down and compare tabs."""
    SCREENS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(server["url"] + "/evaluate")
    wait_idle(page)
    page.get_by_role("button", name="Evaluate").click()
    page.get_by_test_id("stMetric").first.wait_for(timeout=240_000)
    wait_idle(page)
    assert_no_exception(page)
    assert page.get_by_test_id("stMetric").filter(has_text="PQ").count() >= 1
    page.screenshot(path=str(SCREENS / "evaluate-per-class.png"), full_page=True)
    for tab in ("Drill down", "Compare models"):
        page.get_by_role("tab", name=tab).click()
        page.wait_for_timeout(800)
        assert_no_exception(page)
        page.screenshot(
            path=str(SCREENS / f"evaluate-{tab.split()[0].lower()}.png"), full_page=True
        )
    page.close()


def test_why_tab_oracles_and_a_clicked_error_bar(server, browser):
    """The Why tab of an evaluation with oracles: the oracle table, the stacked breakdown, and a click
    on a bar segment listing the images of that class and error type with their highlighted segments."""
    SCREENS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    page.goto(server["url"] + "/evaluate")
    wait_idle(page)
    # The result of test_evaluate_runs_a_job_and_shows_the_analysis, or none yet (this test alone).
    page.wait_for_selector(
        '[data-testid="stMetric"], [data-testid="stAlert"]:has-text("No evaluation yet")',
        timeout=120_000,
    )
    if page.get_by_test_id("stMetric").count() == 0:
        page.get_by_role("button", name="Evaluate").click()
        page.get_by_test_id("stMetric").first.wait_for(timeout=240_000)
        wait_idle(page)
    page.get_by_role("tab", name="Why (oracles, errors)").click()
    wait_idle(page)
    assert_no_exception(page)
    panel = page.get_by_role("tabpanel", name="Why (oracles, errors)")
    assert panel.get_by_text("Which head costs the PQ").count() == 1
    assert panel.get_by_text("without oracles").count() == 0  # the page asked pdl evaluate for them
    chart = (
        panel.get_by_test_id("stPlotlyChart")
        .filter(has_text="Where the PQ of each class goes")
        .first
    )
    chart.scroll_into_view_if_needed()
    page.screenshot(path=str(SCREENS / "evaluate-why.png"), full_page=True)
    # Click the top segment of the first bar that has an error (a bar's last path is its top segment).
    bars = chart.locator("g.trace.bars")
    assert bars.count() >= 2  # PQ plus at least one error type
    bars.nth(bars.count() - 1).locator("path").first.click(force=True)
    wait_idle(page)
    assert_no_exception(page)
    assert (
        panel.get_by_text("Images where").count() == 1
    )  # the clicked (class, error type) has images
    page.screenshot(path=str(SCREENS / "evaluate-why-clicked.png"), full_page=True)
    highlighted = panel.get_by_test_id("stPlotlyChart").filter(has_text="Ground truth:").first
    highlighted.wait_for(timeout=60_000)
    highlighted.scroll_into_view_if_needed()
    assert panel.get_by_test_id("stPlotlyChart").filter(has_text="Prediction:").count() == 1
    page.screenshot(path=str(SCREENS / "evaluate-why-highlight.png"))
    page.close()


def test_inspect_over_training_slider(server, browser):
    """Inspect, "Over training": a workdir's saved steps on a slider, the step's four views beside the
    final model's. The steps are real snapshots of a tiny network."""
    import keras

    from panoptic_deeplab.config import load_config, save_config
    from panoptic_deeplab.datasets.specs import get_dataset_spec
    from panoptic_deeplab.model.builder import build_model
    from panoptic_deeplab.training.history import SnapshotHistory, write_run_spec

    SCREENS.mkdir(parents=True, exist_ok=True)
    run = server["tmp"] / "run"
    keras.utils.set_random_seed(0)
    config, spec = load_config("synthetic/tiny"), get_dataset_spec("synthetic")
    network = build_model(config, num_classes=spec.num_classes)
    run.mkdir()
    save_config(config, run / "config.yaml")
    write_run_spec(run, spec)
    history = SnapshotHistory(run, network, keep=5)
    history.save(100)
    for variable in network.trainable_variables:
        variable.assign(variable * 0.5)
    history.save(200)

    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    page.goto(server["url"])
    wait_idle(page)
    page.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(
        str(next((server["data"] / "val").iterdir()))
    )
    page.wait_for_selector('[data-testid="stPlotlyChart"]', timeout=180_000)
    wait_idle(page)
    page.get_by_text("Over training: this image at any saved step of a run").click()
    wait_idle(page)
    box = page.get_by_label("Workdir")
    box.fill(str(run))
    box.press("Enter")
    page.get_by_test_id("stPlotlyChart").filter(has_text="Semantic, step 200").first.wait_for(
        timeout=180_000
    )
    wait_idle(page)
    assert_no_exception(page)
    assert (
        page.get_by_test_id("stPlotlyChart").filter(has_text="Panoptic, final model").count() == 1
    )
    assert page.get_by_test_id("stSlider").filter(has_text="Step").count() == 1
    page.get_by_test_id("stPlotlyChart").filter(
        has_text="Semantic, step 200"
    ).first.scroll_into_view_if_needed()
    page.screenshot(path=str(SCREENS / "inspect-over-training.png"))
    page.close()


# -- issue 15 acceptance: failures shown with their cause; downloads that other tools read -----------


def _shifted_copy(root: Path, out: Path) -> Path:
    """The data set with every category id moved by 100 (consistent: it passes check-dataset)."""
    import json
    import shutil

    if not out.exists():
        shutil.copytree(root, out)
        path = out / "annotations" / "panoptic_val.json"
        coco = json.loads(path.read_text())
        for c in coco["categories"]:
            c["id"] += 100
        for ann in coco["annotations"]:
            for s in ann["segments_info"]:
                s["category_id"] += 100
        path.write_text(json.dumps(coco))
    return out


def test_evaluate_names_a_bad_root_and_mismatched_classes(server, browser):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(server["url"] + "/evaluate")
    wait_idle(page)
    not_a_data_set = server["tmp"] / "holiday-photos"
    not_a_data_set.mkdir(exist_ok=True)
    cases = [
        (not_a_data_set, "no data set layout found"),
        (
            _shifted_copy(server["data"], server["tmp"] / "shifted"),
            "category ids only in the data set: 100 'road'",
        ),
    ]
    for root, words in cases:
        box = page.get_by_label("Data set root")
        if not box.is_visible():  # an earlier result exists: the form is folded away
            page.get_by_text("Run an evaluation", exact=True).click()
            box.wait_for(state="visible", timeout=10_000)
        box.fill(str(root))
        box.press("Enter")
        wait_idle(page)
        page.get_by_role("button", name="Evaluate").click()
        page.get_by_test_id("stAlertContentError").filter(has_text=words).first.wait_for(
            timeout=60_000
        )
        wait_idle(page)
        assert_no_exception(page)
        page.screenshot(path=str(SCREENS / f"evaluate-error-{root.name}.png"), full_page=True)
    page.close()


def test_inspect_downloads_are_what_pdl_predict_writes(server, browser, tmp_path):
    """Download the Inspect page's panoptic PNG and JSON and score them with `pdl pq` against
    `pdl predict`'s files for the same image: PQ 1.0 (road included: it is segment 1, not VOID)."""
    import json

    image = sorted((server["data"] / "val").iterdir())[0]  # the sample the page shows first
    page = browser.new_page(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    page.goto(server["url"])
    page.wait_for_selector('[data-testid="stPlotlyChart"]', timeout=180_000)
    wait_idle(page)
    saved = tmp_path / "downloads"
    saved.mkdir()
    for label in ("Panoptic PNG", "Segments JSON"):
        with page.expect_download() as info:
            page.get_by_role("button", name=label, exact=True).click()
        download = info.value
        download.save_as(saved / download.suggested_filename)
    page.close()
    assert sorted(p.name for p in saved.iterdir()) == [
        f"{image.stem}_panoptic.json",
        f"{image.stem}_panoptic.png",
    ]

    env = {**os.environ, "PYTHONPATH": str(u.ROOT / "core"), "TF_CPP_MIN_LOG_LEVEL": "2"}
    predicted = tmp_path / "predicted"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "panoptic_deeplab",
            "predict",
            "--model",
            str(server["bundle"]),
            "--images",
            str(image),
            "--out",
            str(predicted),
        ],
        check=True,
        env=env,
        cwd=u.ROOT,
        capture_output=True,
    )
    scores = tmp_path / "pq.json"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "panoptic_deeplab",
            "pq",
            "--gt-json",
            str(predicted / "panoptic.json"),
            "--gt-folder",
            str(predicted / "panoptic"),
            "--pred-json",
            str(saved / f"{image.stem}_panoptic.json"),
            "--pred-folder",
            str(saved),
            "--out",
            str(scores),
            "--workers",
            "1",
        ],
        check=True,
        env=env,
        cwd=u.ROOT,
        capture_output=True,
    )
    result = json.loads(scores.read_text())
    assert result["All"]["pq"] == 1.0 and result["All"]["n"] >= 5
    assert result["per_class"]["0"]["tp"] == 1  # the road is there, matched


def test_the_threshold_slider_shows_the_value_it_applies(server, browser):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(server["url"])
    page.wait_for_selector('[data-testid="stPlotlyChart"]', timeout=180_000)
    wait_idle(page)
    page.get_by_test_id("stRadio").first.get_by_text("Centers", exact=True).click()
    wait_idle(page)
    slider = page.get_by_test_id("stSidebar").get_by_test_id("stSlider").first  # "Center threshold"
    thumb = slider.locator('input[type="range"]')
    start = float(thumb.input_value())
    thumb.focus()
    for _ in range(40):
        page.keyboard.press("ArrowRight")
    page.wait_for_timeout(1500)
    wait_idle(page)
    page.wait_for_timeout(1500)
    wait_idle(page)
    shown = float(slider.get_by_test_id("stSliderThumbValue").inner_text())
    assert float(thumb.input_value()) == pytest.approx(shown)
    caption = page.get_by_text("centers kept after threshold").first.inner_text()
    applied = float(caption.split("after threshold ")[1].split(",")[0])
    beside = page.get_by_test_id("stSidebar").get_by_text("Applied: threshold").inner_text()
    assert beside.startswith(f"Applied: threshold {shown:.2f}")
    page.screenshot(path=str(SCREENS / "inspect-slider.png"), full_page=True)
    page.close()
    assert shown == pytest.approx(start + 0.40, abs=1e-6)
    assert applied == pytest.approx(shown, abs=1e-6), (shown, applied)


def test_review_draws_a_polygon_paints_it_and_times_a_decision(server, browser):
    """The Review page on a split scored beforehand (what `pdl review score` does): a lasso drawn
    on the annotation reaches the page, paints the segment, and a decision's round trip (click
    to the redrawn item, fragment only) is printed."""
    from panoptic_deeplab.review import ModelSource, ReviewStore

    store = ReviewStore.open(server["data"], "val", server["tmp"] / "work")
    store.score(ModelSource(server["bundle"], store.coco["categories"]))
    SCREENS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1400, "height": 1400})
    page.goto(server["url"] + "/review")
    page.get_by_role("button", name="Accept").wait_for(timeout=120_000)
    wait_idle(page)
    assert_no_exception(page)
    page.screenshot(path=str(SCREENS / "review-item.png"), full_page=True)

    drag = page.get_by_test_id("stPlotlyChart").first.locator(".nsewdrag").first.bounding_box()
    corners = [(0.35, 0.35), (0.65, 0.35), (0.65, 0.65), (0.35, 0.65), (0.36, 0.36)]
    x0, y0, w, h = drag["x"], drag["y"], drag["width"], drag["height"]
    page.mouse.move(x0 + w * corners[0][0], y0 + h * corners[0][1])
    page.mouse.down()
    for fx, fy in corners[1:]:
        page.mouse.move(x0 + w * fx, y0 + h * fy, steps=6)
    page.mouse.up()
    page.get_by_text("Drawn: a polygon of", exact=False).wait_for(timeout=60_000)
    wait_idle(page)
    page.get_by_role("button", name="Add drawn pixels").click()
    page.get_by_test_id("stAlertContentSuccess").filter(has_text="Painted segment").wait_for(
        timeout=60_000
    )
    wait_idle(page)
    assert_no_exception(page)
    page.screenshot(path=str(SCREENS / "review-painted.png"), full_page=True)

    started = time.perf_counter()
    page.get_by_role("button", name="Accept").click()
    page.get_by_test_id("stAlertContentSuccess").filter(has_text="Accepted segment").wait_for(
        timeout=60_000
    )
    shown = time.perf_counter() - started
    wait_idle(page)
    print(f"review: Accept click to the message in Chromium: {shown * 1000:.0f} ms")
    assert_no_exception(page)
    assert any(d.action == "accept" for d in store.decisions())
    page.screenshot(path=str(SCREENS / "review-accepted.png"), full_page=True)
    page.close()
