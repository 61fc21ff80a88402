"""The README's notebook editing, as a person does it: `ploomber nb --inject`,
`bin/jupyter`, then in Chromium a double-click on scripts/fit.py and Run All Cells.

Runs in the README's checkout (tests/conftest.py), whose products it puts back
afterwards: running the fit notebook by hand writes the first fit's products.
"""
import json
import re
import secrets
import shutil
import urllib.request

import pytest

from sandbox import free_ports, readme_blocks, run_shell, serving, user_shell_env
from test_ui import browser  # noqa: F401  (a fixture: headless Chromium)

pytestmark = pytest.mark.server  # needs Chromium, from deploy/server/install

ERROR_OUTPUT = '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]'


@pytest.fixture
def lab(checkout, tmp_path):
    """The README's two commands in the checkout; yields Jupyter Lab's URL with its token."""
    [block] = [b for b in readme_blocks() if re.match(r"\.venv/bin/ploomber nb --inject.*\nbin/jupyter", b.text)]
    inject, start = [line.split("  #")[0].strip() for line in block.text.splitlines()]
    shutil.copytree(checkout.path / "products", tmp_path / "products", copy_function=shutil.copy2)
    injected = run_shell(inject, checkout.path)
    assert injected.returncode == 0, injected.stderr
    [port] = free_ports(1)
    token = secrets.token_hex(16)
    url = f"http://127.0.0.1:{port}"
    command = ["bash", "-e", "-c", f"{start} --port {port} --IdentityProvider.token={token}"]
    # Jupyter Lab's own state (open tabs, user settings) from this test only, not from ~/.jupyter
    env = user_shell_env(JUPYTERLAB_WORKSPACES_DIR=str(tmp_path), JUPYTERLAB_SETTINGS_DIR=str(tmp_path))
    try:
        with serving(command, f"{url}/api/status?token={token}", tmp_path / "jupyter.log", cwd=checkout.path, env=env) as jupyter:
            yield f"{url}/lab?token={token}"
            # as File > Shut Down does: the kernel too, which a signal would leave behind
            urllib.request.urlopen(urllib.request.Request(f"{url}/api/shutdown?token={token}", method="POST"), timeout=30)
            jupyter.wait(timeout=120)
    finally:
        removed = run_shell(".venv/bin/ploomber nb --remove", checkout.path)
        shutil.rmtree(checkout.path / "products")
        shutil.copytree(tmp_path / "products", checkout.path / "products", copy_function=shutil.copy2)
        assert removed.returncode == 0, removed.stderr
    assert run_shell("git status --porcelain", checkout.path).stdout == ""


def test_a_double_clicked_script_opens_as_a_notebook_that_runs_without_errors(browser, lab, tmp_path):  # noqa: F811
    # no news, no update checks: off in the server and in the settings a user sees
    base, token = lab.split("/lab?token=")
    assert '"news": {"disabled": true}' in urllib.request.urlopen(lab, timeout=60).read().decode()
    notifications = f"{base}/lab/api/settings/@jupyterlab/apputils-extension:notification?token={token}"
    schema = json.load(urllib.request.urlopen(notifications, timeout=60))["schema"]["properties"]
    assert (schema["fetchNews"]["default"], schema["checkForUpdates"]["default"]) == ("false", False)

    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(120_000)  # a busy 2-core machine, and a kernel to start
    try:
        page.goto(lab)
        for name in ("scripts", "fit.py"):
            page.locator(".jp-DirListing-itemText", has_text=re.compile(f"^{re.escape(name)}$")).dblclick()
        notebook = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")
        notebook.locator(".jp-CodeCell", has_text="# Parameters").wait_for()  # the injected cell
        assert notebook.locator(".jp-FileEditor").count() == 0
        page.get_by_text("Python 3 (.venv) | Idle").wait_for()  # the status bar: its kernel is up

        page.get_by_role("menuitem", name="Run", exact=True).click()
        page.get_by_role("menuitem", name=re.compile(r"^Run All Cells")).click()
        # every code cell numbered: none waiting ([ ]) or running ([*])
        page.wait_for_function(
            """() => {
                const prompts = [...document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell .jp-InputPrompt')];
                return prompts.length > 0 && prompts.every(p => /\\[\\d+\\]/.test(p.textContent));
            }"""
        )
        errors = notebook.locator(ERROR_OUTPUT).all_inner_texts()
        assert errors == []
        assert notebook.locator(".jp-OutputArea-output img, .jp-OutputArea-output svg").count() >= 1  # the confusion matrix
    except Exception:
        page.screenshot(path=tmp_path / "jupyter.png")
        raise
    finally:
        page.close()
