"""Real-browser tests: `pdl app` serves the app, Playwright drives Debian's Chromium
(/usr/bin/chromium, headless; never a browser downloaded by Playwright). They upload an image, step
through the four outputs, open every page, and save screenshots under $PDL_SCREENSHOTS (default
/tmp/screens)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.app import apptest_utils as u

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


def wait_until(page, condition, what: str, timeout_s: float = 120) -> None:
    """Poll ``condition`` until it holds, then wait for an idle page. A click's rerun can start
    after ``wait_idle`` has already seen an idle page on a loaded machine; waiting for the
    click's visible effect does not race with it."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        page.wait_for_timeout(250)
    wait_idle(page)


def steps(page):
    """Inspect's "Step" radio (the page has others: what to inspect, the layout)."""
    return page.get_by_test_id("stRadio").filter(has_text="Semantic").first


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
        steps(page).get_by_text(stage, exact=True).click()
        chart = page.get_by_test_id("stPlotlyChart").first
        wait_until(page, lambda s=stage, c=chart: s in c.inner_text(), f"the {stage} figure")
        assert_no_exception(page)
        assert chart.locator(".main-svg").count() > 0  # plotly drew it
        assert chart.inner_text().find(stage) >= 0  # the figure's title names the step
        page.screenshot(path=str(SCREENS / f"inspect-{stage.lower()}.png"), full_page=True)
    # Click a pixel in the figure: the pixel inspector follows it (plotly selection -> Streamlit).
    x_input = page.get_by_role("spinbutton", name="x", exact=True)
    before = x_input.input_value()
    box = page.get_by_test_id("stPlotlyChart").first.locator(".nsewdrag").first.bounding_box()
    page.mouse.click(box["x"] + box["width"] * 0.2, box["y"] + box["height"] * 0.3)
    wait_until(page, lambda: x_input.input_value() != before, "the inspector to follow the click")
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
    """Start `pdl evaluate` from the page, wait for its results, open the drill-down and compare
    tabs."""
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
    """The Why tab of an evaluation with oracles: the oracle table, the stacked breakdown, and a
    click on a bar segment listing the images of that class and error type with their highlighted
    segments."""
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
    # Click the top segment of the first bar that has an error (a bar's last path is its top
    # segment).
    bars = chart.locator("g.trace.bars")
    assert bars.count() >= 2  # PQ plus at least one error type
    bars.nth(bars.count() - 1).locator("path").first.click(force=True)
    wait_idle(page)
    assert_no_exception(page)
    # The clicked (class, error type) has images; the rerun the click starts may begin late on a
    # loaded machine, so wait for its result rather than for an idle page.
    panel.get_by_text("Images where").wait_for(timeout=120_000)
    assert panel.get_by_text("Images where").count() == 1
    page.screenshot(path=str(SCREENS / "evaluate-why-clicked.png"), full_page=True)
    highlighted = panel.get_by_test_id("stPlotlyChart").filter(has_text="Ground truth:").first
    highlighted.wait_for(timeout=60_000)
    highlighted.scroll_into_view_if_needed()
    assert panel.get_by_test_id("stPlotlyChart").filter(has_text="Prediction:").count() == 1
    page.screenshot(path=str(SCREENS / "evaluate-why-highlight.png"))
    page.close()


def test_inspect_over_training_slider(server, browser):
    """Inspect, "Over training": a workdir's saved steps on a slider, the step's four views beside
    the final model's. The steps are real snapshots of a tiny network."""
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


# -- issue 15 acceptance: failures shown with their cause; downloads that other tools read --------


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


def test_evaluate_a_prediction_set_from_another_tool(server, browser, tmp_path):
    """Issue 23: the Evaluate page on prediction files written as another tool writes them (the
    ground truth with other segment ids, another segment order, PNGs written by PIL): the job
    runs and the page shows the set's result by its name, PQ 100."""
    from tests.core.evaluation.synth import write_pil_png
    from tests.core.evaluation.test_prediction_sets import ground_truth, random_ids, write_set

    images = ground_truth(server["data"])
    pred_json = write_set(
        images, tmp_path / "other-tool", writer=write_pil_png, renumber=random_ids(7), shuffle=3
    )
    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    page.goto(server["url"] + "/evaluate")
    wait_idle(page)
    what = page.get_by_test_id("stRadio").filter(has_text="What to evaluate")
    if not what.is_visible():  # an earlier result exists: the form is folded away
        page.get_by_text("Run an evaluation", exact=True).click()
        what.wait_for(state="visible", timeout=10_000)
    what.get_by_text("a prediction set", exact=True).click()
    box = page.get_by_role("textbox", name="Predictions JSON (COCO panoptic)")
    box.wait_for(state="visible", timeout=60_000)
    box.fill(str(pred_json))
    box.press("Enter")
    wait_idle(page)
    name = page.get_by_role("textbox", name="Name", exact=True)
    name.fill("other-tool")
    name.press("Enter")
    wait_idle(page)
    page.get_by_role("button", name="Evaluate").click()
    result = page.get_by_role("combobox", name="Result")
    wait_until(
        page,
        lambda: result.count() == 1 and result.input_value().startswith("other-tool on "),
        "the set's result to be the one shown",
        timeout_s=300,
    )
    pq = page.get_by_test_id("stMetric").filter(has_text="PQ").first
    wait_until(page, lambda: "100.0" in pq.inner_text(), "the set's PQ on the page")
    assert_no_exception(page)
    page.screenshot(path=str(SCREENS / "evaluate-prediction-set.png"), full_page=True)
    page.close()


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
    steps(page).get_by_text("Centers", exact=True).click()
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
    # The value reaches the server when the slider sends it, which a loaded machine may delay
    # past an idle page: wait for the caption to name it (a value that never arrives fails here).
    expected = f"Applied: threshold {shown:.2f}"
    page.get_by_test_id("stSidebar").get_by_text(expected).wait_for(timeout=120_000)
    wait_idle(page)
    caption = page.get_by_text("centers kept after threshold").first.inner_text()
    applied = float(caption.split("after threshold ")[1].split(",")[0])
    beside = page.get_by_test_id("stSidebar").get_by_text("Applied: threshold").inner_text()
    assert beside.startswith(expected)
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
    # Missed objects rank first (they have no Accept): show the annotated segments only.
    page.get_by_test_id("stRadio").filter(has_text="Missing objects").get_by_text(
        "Segments", exact=True
    ).click(timeout=120_000)
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


# -- issue 22 proof: every edit of the Review page done in Chromium, then the export ---------------


def _chart_xy(page, x: float, y: float) -> tuple[float, float]:
    """Where the annotation chart shows the crop pixel (x, y), in viewport pixels (Plotly's own
    axis conversion, so the test does not guess the figure's margins or aspect)."""
    return tuple(
        page.get_by_test_id("stPlotlyChart")
        .first.locator(".js-plotly-plot")
        .evaluate(
            """(gd, [x, y]) => {
                const fl = gd._fullLayout, r = gd.getBoundingClientRect();
                return [r.left + fl.xaxis._offset + fl.xaxis.l2p(x),
                        r.top + fl.yaxis._offset + fl.yaxis.l2p(y)];
            }""",
            [float(x), float(y)],
        )
    )


def _item(page, store, source, show: str):
    """The ranked row the page shows now ("Item k of N" in the view of ``show``)."""
    import re

    caption = page.get_by_text(re.compile(r"^Item \d+ of \d+$")).inner_text()
    k = int(caption.split()[1])
    view = store.ranked(source)
    kinds = {"Segments": "gt_segment", "Missing objects": "missing"}
    view = view[view["kind"] == kinds[show]].reset_index(drop=True)
    assert int(caption.split()[3]) == len(view), (caption, len(view))
    return view.iloc[k - 1]


def _click_key(page, key: str) -> None:
    page.locator(f".st-key-{key} button").first.click()


def _edit(page, store, key: str, action: str, shot: str) -> dict:
    """Click the edit's button, wait until the store has the change and the page is idle;
    the change's report row."""
    before = len(store.changes())
    _click_key(page, key)
    deadline = time.monotonic() + 60
    while len(store.changes()) == before:
        refused = page.get_by_test_id("stAlertContentError").or_(
            page.get_by_test_id("stAlertContentWarning")
        )
        assert refused.count() == 0, f"{key}: {refused.first.inner_text()}"
        assert time.monotonic() < deadline, f"{key}: nothing was saved"
        page.wait_for_timeout(200)
    wait_idle(page)
    assert_no_exception(page)
    change = store.changes()[-1]
    assert change["action"] == action, change
    page.screenshot(path=str(SCREENS / f"review-edit-{shot}.png"), full_page=True)
    return change


def _crop_origin(store, image_id, sid) -> tuple[int, int]:
    """The (x0, y0) of the zoomed crop the page shows for a GT segment."""
    from panoptic_deeplab.app.components import review_view as rv

    x0, y0, _, _ = rv.crop_box(store.segment(image_id, sid).bbox, store.gt_ids(image_id).shape)
    return x0, y0


def test_review_each_edit_in_chromium_then_export(server, browser, tmp_path):
    """Issue 22's browser proof, on a copy of the data set scored beforehand: add a missed object,
    take the model's segment, paint a polygon, subtract a smart region, merge two people and split
    them along the model's instances, each through the page's own buttons and the chart's lasso
    and click; each checked in the review store; then Export, and the exported PNGs hold exactly
    the store's labels with fresh unique ids, and the export passes the data-set checks."""
    import hashlib
    import json
    import shutil

    import numpy as np

    from panoptic_deeplab.datasets.checks import check_dataset
    from panoptic_deeplab.datasets.png_ids import read_segment_ids
    from panoptic_deeplab.review import ModelSource, ReviewStore, model_source_key

    started = time.perf_counter()
    root = tmp_path / "street"  # a copy: the other review test's decisions do not reach it
    shutil.copytree(server["data"], root)
    store = ReviewStore.open(root, "val", server["tmp"] / "work")
    store.score(ModelSource(server["bundle"], store.coco["categories"]))
    source = model_source_key(server["bundle"])
    originals = {p: hashlib.md5(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()}
    SCREENS.mkdir(parents=True, exist_ok=True)

    page = browser.new_page(viewport={"width": 1400, "height": 1400})
    page.goto(server["url"] + "/review")
    wait_idle(page)
    page.get_by_test_id("stSelectbox").filter(has_text="Data set").first.click()
    page.get_by_role("option", name="other folder…").click()
    wait_idle(page)
    box = page.get_by_label("Data set root")
    box.fill(str(root))
    box.press("Enter")
    page.locator("p").filter(has_text=f"Data set {root} ·").first.wait_for(timeout=60_000)
    wait_idle(page)
    assert_no_exception(page)

    def show(what: str) -> None:
        page.get_by_test_id("stRadio").filter(has_text="Missing objects").get_by_text(
            what, exact=True
        ).click()
        wait_idle(page)

    # 1. Add a missed object: the model's mask becomes a new segment with a fresh id.
    show("Missing objects")
    row = _item(page, store, source, "Missing objects")
    missed_image, pid = str(row["image_id"]), int(row["ref_id"])
    proposal, model_class = store.missing_proposal(missed_image, pid, source=source)
    page.screenshot(path=str(SCREENS / "review-edit-0-missing.png"), full_page=True)
    old_ids = set(store.image_state(missed_image).segments)
    change = _edit(page, store, "add_missed", "add_missed", "1-added")
    added = [s for s in store.image_state(missed_image).active().values() if s.origin == "model"]
    assert len(added) == 1 and added[0].id not in old_ids
    assert added[0].category_id == model_class
    assert np.array_equal(store.gt_ids(missed_image) == added[0].id, proposal)

    # The GT segment to fix: a thing with another segment of its class in the image (to merge).
    show("Segments")
    for _ in range(30):
        row = _item(page, store, source, "Segments")
        image_id, sid = str(row["image_id"]), int(row["ref_id"])
        cat = store.segment(image_id, sid).category_id
        partners = [
            s
            for s in store.image_state(image_id).active().values()
            if s.category_id == cat and s.id != sid
        ]
        if store.is_thing(cat) and partners and not pd_isna(row["pred_segment_id"]):
            break
        _click_key(page, "next")
        wait_idle(page)
    else:
        pytest.fail("no thing segment with a partner of its class in the first 30 items")

    # 2. Take the model's segment: the mask becomes exactly the overlapping predicted segment.
    change = _edit(page, store, "take_model", "take_model", "2-take-model")
    prediction = np.asarray(store.prediction(source, image_id).panoptic)
    model_mask = prediction == int(change["other_segment"])
    assert np.array_equal(store.gt_ids(image_id) == sid, model_mask)

    # 3. Paint: a lasso drawn on the chart over the segment's right half and beyond it.
    before = np.array(store.gt_ids(image_id))
    x, y, w, h = store.segment(image_id, sid).bbox
    x0, y0 = _crop_origin(store, image_id, sid)
    left, top = x + w // 2, y + h // 2 - 5
    square = [(left, top), (left + 10, top), (left + 10, top + 10), (left, top + 10)]
    page.get_by_test_id("stPlotlyChart").first.scroll_into_view_if_needed()
    points = [_chart_xy(page, px - x0, py - y0) for px, py in [*square, square[0]]]
    page.mouse.move(*points[0])
    page.mouse.down()
    for p in points[1:]:
        page.mouse.move(*p, steps=8)
    page.mouse.up()
    page.get_by_text("Drawn: a polygon of", exact=False).wait_for(timeout=60_000)
    wait_idle(page)
    change = _edit(page, store, "paint_add", "paint", "3-painted")
    after = np.array(store.gt_ids(image_id))
    changed = after != before
    inside = np.zeros_like(changed)
    inside[top - 1 : top + 12, left - 1 : left + 12] = True  # the square, give or take a pixel
    assert changed.sum() == change["pixels_added"] > 0 and (after[changed] == sid).all()
    assert not (changed & ~inside).any()
    assert (after[top + 1 : top + 10, left + 1 : left + 10] == sid).mean() > 0.9

    # 4. Smart region: a box dragged (the chart's box select) around the person the model saw,
    # and GrabCut's region in it subtracted. (A plain click cannot be used: Streamlit turns
    # Plotly's click selection off while the chart's drag mode is lasso or box select.)
    x0, y0 = _crop_origin(store, image_id, sid)
    ys, xs = np.nonzero(model_mask)
    page.get_by_test_id("stPlotlyChart").first.hover()
    page.locator('.modebar-btn[data-title="Box Select"]').first.click()
    page.mouse.move(*_chart_xy(page, xs.min() - 2 - x0, ys.min() - 2 - y0))
    page.mouse.down()
    page.mouse.move(*_chart_xy(page, xs.max() + 2 - x0, ys.max() + 2 - y0), steps=8)
    page.mouse.up()
    caption = page.get_by_text("box at (", exact=False)
    caption.wait_for(timeout=60_000)
    wait_idle(page)
    size, _, at = caption.inner_text().split("Drawn: a ")[1].split(")")[0].partition(" box at (")
    bw, bh = (int(v) for v in size.split("x"))
    bx, by = (int(v) for v in at.split(","))
    assert abs(bx - (xs.min() - 2)) <= 1 and abs(by - (ys.min() - 2)) <= 1, (bx, by)
    assert abs(bx + bw - 1 - (xs.max() + 2)) <= 1 and abs(by + bh - 1 - (ys.max() + 2)) <= 1
    before = after
    change = _edit(page, store, "region_remove", "region", "4-smart-region")
    after = np.array(store.gt_ids(image_id))
    changed = after != before
    assert changed.sum() == change["pixels_removed"] > 0.5 * model_mask.sum()  # the person
    assert (before[changed] == sid).all() and (after[changed] == 0).all()
    assert not changed[:by].any() and not changed[by + bh :].any()  # only inside the box
    assert not changed[:, :bx].any() and not changed[:, bx + bw :].any()

    # 5. Merge: the nearest segment of the same class joins this one.
    centre = np.array([x + w / 2, y + h / 2])
    other = min(
        partners,
        key=lambda s: np.abs(np.array(s.bbox[:2]) + np.array(s.bbox[2:]) / 2 - centre).sum(),
    )
    page.get_by_test_id("stSelectbox").filter(has_text="Merge with").first.click()
    page.get_by_role("option", name=f"{other.id} · {store.category_name(cat)}").click()
    wait_idle(page)
    before = after
    change = _edit(page, store, "merge", "merge", "5-merged")
    merged = np.array(store.gt_ids(image_id)) == sid
    assert np.array_equal(merged, (before == sid) | (before == other.id))
    assert store.segment(image_id, other.id).removed

    # 6. Split along the model's instances: the merged segment becomes two or more again.
    known = set(store.image_state(image_id).segments)
    change = _edit(page, store, "split_model", "split", "6-split")
    ids = np.array(store.gt_ids(image_id))
    parts = [sid, *change["new_segments"]]
    assert len(parts) >= 2 and all((ids == p).any() for p in parts)
    assert np.array_equal(np.isin(ids, parts), merged)
    assert not set(change["new_segments"]) & known  # fresh ids

    # 7. Eraser: a click with the brush (in the chart's Pan mode, where Streamlit passes clicks).
    before = ids
    ys, xs = np.nonzero(before == sid)
    x0, y0 = _crop_origin(store, image_id, sid)
    page.get_by_test_id("stPlotlyChart").first.hover()
    page.locator('.modebar-btn[data-title="Pan"]').first.click()
    target = _chart_xy(page, xs[len(xs) // 2] - x0, ys[len(ys) // 2] - y0)
    page.mouse.move(target[0] - 5, target[1] - 5)
    page.mouse.move(*target, steps=3)
    page.wait_for_timeout(300)
    page.mouse.click(*target)
    caption = page.get_by_text("Drawn: a click at (", exact=False)
    caption.wait_for(timeout=60_000)
    wait_idle(page)
    cx, cy = (int(v) for v in caption.inner_text().split("click at (")[1].split(")")[0].split(","))
    assert abs(cx - xs[len(xs) // 2]) <= 1 and abs(cy - ys[len(ys) // 2]) <= 1
    change = _edit(page, store, "paint_remove", "paint", "7-erased")
    after = np.array(store.gt_ids(image_id))
    changed = after != before
    yy, xx = np.mgrid[: after.shape[0], : after.shape[1]]
    disk = (xx - cx) ** 2 + (yy - cy) ** 2 <= 3**2  # the brush radius the page starts with
    assert np.array_equal(changed, disk & (before == sid)) and changed[cy, cx]
    assert (after[changed] == 0).all() and change["pixels_removed"] == changed.sum()

    # Export from the page; the PNGs hold the store's labels.
    out = tmp_path / "export"
    box = page.get_by_label("Export folder")
    box.fill(str(out))
    box.press("Enter")
    wait_idle(page)
    _click_key(page, "export")
    page.get_by_test_id("stAlertContentSuccess").filter(has_text="Exported to").wait_for(
        timeout=60_000
    )
    wait_idle(page)
    assert_no_exception(page)
    page.get_by_test_id("stAlertContentSuccess").filter(
        has_text="Exported to"
    ).scroll_into_view_if_needed()
    page.screenshot(path=str(SCREENS / "review-edit-8-exported.png"), full_page=True)
    page.close()

    coco = json.loads((out / "annotations" / "panoptic_val.json").read_text())
    for edited in {missed_image, image_id}:
        ann = next(a for a in coco["annotations"] if str(a["image_id"]) == edited)
        exported = read_segment_ids(out / "annotations" / "panoptic_val" / ann["file_name"])
        info = {s["id"]: s for s in ann["segments_info"]}
        assert len(info) == len(ann["segments_info"])  # unique ids
        state = store.image_state(edited)
        assert np.array_equal(exported == 0, state.ids == 0)  # VOID where the store says
        seen = set()
        for seg in state.active().values():
            mask = state.ids == seg.id
            (new_id,) = np.unique(exported[mask])  # one exported segment per store segment
            assert (exported == new_id).sum() == mask.sum() and int(new_id) not in seen
            seen.add(int(new_id))
            ys, xs = np.nonzero(mask)
            bbox = [int(xs.min()), int(ys.min()), int(np.ptp(xs) + 1), int(np.ptp(ys) + 1)]
            s = info[int(new_id)]
            assert (s["category_id"], s["area"], s["bbox"]) == (
                seg.category_id,
                int(mask.sum()),
                bbox,
            ), (edited, seg, s)
        assert seen == set(info)
    for split in ("val", "train"):
        assert check_dataset(out, split) == [], split
    assert {
        p: hashlib.md5(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()
    } == originals  # the source never changes
    print(f"review: every edit in Chromium and the export: {time.perf_counter() - started:.1f} s")


def pd_isna(value) -> bool:
    import pandas as pd

    return bool(pd.isna(value))
