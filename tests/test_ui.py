"""The MLflow UI of deploy/server, in headless Chromium (Debian's, no download),
signed in as a reader whom deploy/server/add-user added.

UPDATE_SCREENSHOT=1 also saves the experiment page to docs/mlflow-ui.png,
the picture in the README.
"""
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

import tracking
from deployed import credentials
from sandbox import ROOT, require

pytestmark = pytest.mark.server

CHROMIUM = "/usr/bin/chromium"
# Without the background-networking switches Chromium's own connections are
# refused on a closed network, and pages stall.
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
SCREENSHOT = ROOT / "docs" / "mlflow-ui.png"


@pytest.fixture(scope="module")
def browser():
    require(f"Chromium ({CHROMIUM})", Path(CHROMIUM).exists(), "deploy/server/install")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def reader(grid_on_server):
    """The credentials of a teammate who may read only, as the browser's login asks for them."""
    added = subprocess.run(
        [ROOT / "deploy" / "server" / "add-user", "ui-reader", "reader"],
        env={**os.environ, "STATE": str(grid_on_server.state)}, capture_output=True, text=True, timeout=60,
    )
    assert added.returncode == 0, added.stderr
    signed = credentials(added.stdout.strip())
    return {"username": signed["MLFLOW_TRACKING_USERNAME"], "password": signed["MLFLOW_TRACKING_PASSWORD"]}


@pytest.fixture
def page(browser, reader):
    # the server's 401 asks for basic auth; the browser answers as the reader
    page = browser.new_page(viewport={"width": 1680, "height": 600}, http_credentials=reader)
    page.set_default_timeout(60_000)  # a busy 2-core machine
    yield page
    page.close()


def test_the_experiment_page_shows_the_build_as_one_row_that_expands_into_its_fits(page, grid_on_server, tmp_path):
    client = MlflowClient(grid_on_server.url)
    experiment = client.get_experiment_by_name("iris-grid")
    fits = client.search_runs([experiment.experiment_id], filter_string=f"tags.`{tracking.ROLE_TAG}` = 'fit'")
    [build] = client.search_runs([experiment.experiment_id], filter_string=f"tags.`{tracking.ROLE_TAG}` = 'build'")
    names = [r.info.run_name for r in fits]
    assert len(names) == 8

    page.goto(f"{grid_on_server.url}/#/experiments/{experiment.experiment_id}/runs?workflowType=machine_learning")
    build_name = page.get_by_text(build.info.run_name, exact=True)
    build_name.wait_for()
    assert not page.get_by_text(names[0], exact=True).is_visible()  # folded into the build's row
    row = page.locator(".ag-row", has=build_name)
    row.locator('[col-id="attributes.`Run Name`"] button').first.click()  # the row's expander
    for name in names:
        page.get_by_text(name, exact=True).wait_for()

    # For the picture: no assistant panel, the scores (cross-validated and
    # held-out) instead of dataset and source, run names in full (a double
    # click fits the column to them).
    page.get_by_role("button", name="Close", exact=True).click()
    page.get_by_role("button", name="Columns", exact=True).click()
    page.get_by_text(re.compile(r"^Metrics \(\d+\)$")).last.click()
    for column in ["Dataset", "Source"]:
        page.get_by_text(column, exact=True).last.click()
    page.keyboard.press("Escape")
    page.get_by_role("columnheader", name="cv_accuracy_mean").first.wait_for()
    page.locator('[col-id="attributes.`Run Name`"] .ag-header-cell-resize').dblclick()
    page.wait_for_timeout(500)  # the table settles after the columns change
    page.screenshot(path=tmp_path / "mlflow-ui.png")
    if os.environ.get("UPDATE_SCREENSHOT"):
        SCREENSHOT.parent.mkdir(exist_ok=True)
        shutil.copy(tmp_path / "mlflow-ui.png", SCREENSHOT)


def test_a_run_report_opens_in_the_ui(page, grid_on_server, tmp_path):
    client = MlflowClient(grid_on_server.url)
    experiment = client.get_experiment_by_name("iris-grid")
    run = client.search_runs(
        [experiment.experiment_id], filter_string=f"tags.`{tracking.ROLE_TAG}` = 'fit'", max_results=1
    )[0]
    elsewhere = []  # anything the page asks of another host than the server
    page.on("request", lambda r: r.url.startswith(("http:", "https:")) and not r.url.startswith(grid_on_server.url) and elsewhere.append(r.url))

    with page.expect_response(lambda r: "/get-artifact?" in r.url and tracking.REPORT_ARTIFACT in r.url) as got:
        page.goto(
            f"{grid_on_server.url}/#/experiments/{experiment.experiment_id}"
            f"/runs/{run.info.run_id}/artifacts/{tracking.REPORT_ARTIFACT}"
        )
    assert got.value.ok
    # the UI shows the HTML artifact in a frame of its own
    report = page.frame_locator("iframe")
    report.get_by_text(run.info.run_id).wait_for()
    assert run.info.run_name in report.locator("body").inner_text()
    # its outputs, styled by the report itself: the scores table and the confusion matrix
    assert report.locator("table").first.is_visible()
    image = report.locator('svg[aria-label^="confusion matrix of 45 rows"]')
    assert image.evaluate("svg => svg.getBoundingClientRect().width > 100 && svg.querySelectorAll('rect').length == 9")
    assert report.locator("h2").first.evaluate("h => getComputedStyle(h).borderBottomStyle") == "solid"
    assert elsewhere == []
    # to look at: the report's top half, beside the run's artifacts
    page.get_by_role("button", name="Close", exact=True).click()
    page.set_viewport_size({"width": 1400, "height": 1000})
    page.screenshot(path=tmp_path / "report-in-the-ui.png")
