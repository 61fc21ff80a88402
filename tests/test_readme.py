"""Every shell block of README.md, run as written.

Each ```sh block is one test, named by its first command. RUNNERS says how a
block runs: in `checkout` (a copy of the repository that the README's first
command set up and built), in a fresh copy, or by the test of the server it
needs. A block that no runner matches fails, unless the README marks it, on the
line just before its fence, `<!-- untested: why -->`. Ports of servers are
swapped for free ones; nothing else of a block is changed.
"""
import glob
import json
import re
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

import tracking
from sandbox import ROOT, free_ports, make_checkout, readme_blocks, require, run_shell, serving, user_shell_env

README = (ROOT / "README.md").read_text()
FITS = 8
TASKS = ["get", "sepal", "petal", "features", "compare", "score"]


def succeeded(block, cwd, **env):
    result = run_shell(block.text, cwd, **env)
    assert result.returncode == 0, f"{block.name} failed:\n{result.stdout}\n{result.stderr}"
    return result


def on_free_port(text, port, server=None):
    """`text` with its loopback ports replaced by `port`; a `server` line without --port gets one."""
    text = re.sub(r"127\.0\.0\.1:\d+", f"127.0.0.1:{port}", text)
    text = re.sub(r"--port \d+", f"--port {port}", text)
    if server:
        text = "\n".join(f"{line} --port {port}" if server in line and "--port" not in line else line for line in text.splitlines())
    return text


def fit_runs(client):
    experiment = client.get_experiment_by_name("iris-grid")
    return client.search_runs([experiment.experiment_id], filter_string=f"tags.`{tracking.ROLE_TAG}` = 'fit'")


# --- runners: each takes the block, pytest's `request` and a tmp_path ---


def in_the_checkout(block, request, tmp_path):
    """For a block that needs the built project: run it there; it must succeed."""
    checkout = request.getfixturevalue("checkout")
    return checkout, succeeded(block, checkout.path)


def in_a_fresh_copy(block, request, tmp_path):
    """For a block that needs no build: run it in a copy of its own; it must succeed."""
    copy = make_checkout(tmp_path, venv=request.getfixturevalue("checkout").path / ".venv")
    return copy, succeeded(block, copy.path)


def set_up_and_built_the_checkout(block, request, tmp_path):
    checkout = request.getfixturevalue("checkout")  # which ran this block
    assert (checkout.path / ".venv" / "bin" / "ploomber").exists()
    client = checkout.client()
    runs = fit_runs(client)
    assert len(runs) >= FITS and {r.info.status for r in runs} == {"FINISHED"}
    assert client.get_model_version_by_alias("iris-classifier", tracking.CHAMPION_ALIAS)
    # it ends with the command that opens its store, after Ploomber's table of tasks
    *_, champion, browse = checkout.output.stdout.rstrip("\n").splitlines()
    assert champion.startswith("Champion: iris-classifier@champion is version 1, was no version")
    store = f"sqlite:///{checkout.path}/mlflow.db"
    assert browse == f"Browse the runs: .venv/bin/mlflow ui --backend-store-uri {store} --host 127.0.0.1"
    the_ui_opens_the_store(browse.removeprefix("Browse the runs: "), checkout, tmp_path)


def the_ui_opens_the_store(command, checkout, tmp_path):
    [port] = free_ports(1)
    url = f"http://127.0.0.1:{port}"
    ui = ["bash", "-e", "-c", on_free_port(command, port, server="mlflow ui")]
    with serving(ui, f"{url}/health", tmp_path / "ui.log", cwd=checkout.path, env=user_shell_env()):
        client = MlflowClient(url)
        assert len(fit_runs(client)) >= FITS
        assert client.get_experiment_by_name("iris-grid-compare")
        assert client.get_model_version_by_alias("iris-classifier", tracking.CHAMPION_ALIAS)


def collects_the_suite_in_the_checkout(block, request, tmp_path):
    # .ci/run runs the whole suite this way; here pytest only collects it
    assert block.name in (ROOT / ".ci" / "run").read_text()
    require("PostgreSQL", glob.glob("/usr/lib/postgresql/*/bin/initdb"), "deploy/server/install")
    require("Chromium", Path("/usr/bin/chromium").exists(), "deploy/server/install")
    require("SLURM", Path("/usr/sbin/slurmctld").exists(), "deploy/slurm/install")
    checkout = request.getfixturevalue("checkout")
    result = succeeded(block, checkout.path, PYTEST_ADDOPTS="--collect-only -q")
    assert re.search(r"^\d+ tests collected", result.stdout, re.MULTILINE), result.stdout


def plots_and_lists_the_dag_in_a_fresh_copy(block, request, tmp_path):
    copy, result = in_a_fresh_copy(block, request, tmp_path)
    assert "Plot saved at: pipeline.html" in result.stdout
    # bin/dag: every task once, each after the tasks it needs
    lines = [line for line in result.stdout.splitlines() if re.fullmatch(r"[\w.=-]+(  <- .*)?", line)]
    order = [line.split("  <- ")[0] for line in lines]
    needs = {line.split("  <- ")[0]: line.split("  <- ")[1].split(", ") for line in lines if "  <- " in line}
    fits = [name for name in order if name.startswith("fit-")]
    assert len(fits) == FITS and sorted(set(order) - set(fits)) == sorted(TASKS)
    assert order[0] == "get" and order[-1] == "score"
    assert sorted(name for name in needs["compare"] if name.startswith("fit-")) == sorted(fits)
    assert all(order.index(need) < order.index(name) for name, names in needs.items() for need in names)
    status = run_shell("git status --porcelain", copy.path).stdout
    assert status == "", f"generated files not ignored by git:\n{status}"


def scores_a_csv_of_flowers(block, request, tmp_path):
    (request.getfixturevalue("checkout").path / "flowers.csv").write_text(
        "sepal_length,sepal_width,petal_length,petal_width\n5.1,3.5,1.4,0.2\n6.7,3.0,5.2,2.3\n"
    )
    checkout, _ = in_the_checkout(block, request, tmp_path)
    predictions = (checkout.path / "products" / "predictions.csv").read_text().splitlines()
    assert len(predictions) == 1 + 2
    assert json.loads((checkout.path / "products" / "predictions.model.json").read_text())["input"] == "flowers.csv"


def serves_the_champion_and_answers_the_curl_example(block, request, tmp_path):
    checkout = request.getfixturevalue("checkout")
    [ask] = [b for b in readme_blocks() if b.name.startswith("curl ") and "/invocations" in b.text]
    [port] = free_ports(1)
    serve = ["bash", "-e", "-c", on_free_port(block.text, port)]
    with serving(serve, f"http://127.0.0.1:{port}/ping", tmp_path / "serve.log", cwd=checkout.path, env=user_shell_env()):
        answer = run_shell(on_free_port(ask.text, port), checkout.path)
    assert answer.returncode == 0, answer.stderr
    promised = re.search(r"It answers `(\{.*?\})`", README).group(1)
    assert json.loads(answer.stdout) == json.loads(promised)


def the_ui_shows_fits_compare_runs_and_the_champion(block, request, tmp_path):
    the_ui_opens_the_store(block.text, request.getfixturevalue("checkout"), tmp_path)


def run_by(where):
    def skip(block, request, tmp_path):
        pytest.skip(f"run by {where}")

    return skip


# (a regular expression the block's text starts with, its runner). A new block
# that only has to succeed is one line: (r"bin/its-command", in_the_checkout).
RUNNERS = [
    (r"bin/setup && \.venv/bin/ploomber build", set_up_and_built_the_checkout),
    (r"deploy/server/install && deploy/slurm/install && bin/setup && \.venv/bin/python -m pytest", collects_the_suite_in_the_checkout),
    (r"\.venv/bin/ploomber plot .*\nbin/dag", plots_and_lists_the_dag_in_a_fresh_copy),
    (r"\.venv/bin/ploomber build .*--env--score_input flowers\.csv", scores_a_csv_of_flowers),
    (r"source \.venv/bin/activate\n(.*\n)*mlflow models serve", serves_the_champion_and_answers_the_curl_example),
    (r"curl .*/invocations", run_by("the `mlflow models serve` block's test, against that server")),
    (r"\.venv/bin/mlflow ui ", the_ui_shows_fits_compare_runs_and_the_champion),
    (r"\.venv/bin/ploomber nb --inject.*\nbin/jupyter", run_by("tests/test_jupyter.py, in Chromium")),
    (r"deploy/server/install .*\ndeploy/server/start", run_by("tests/test_server.py and tests/test_ui.py (tests/deployed.py)")),
    (r"deploy/server/add-user ", run_by("tests/test_accounts.py, against the server of tests/deployed.py")),
    (r"deploy/slurm/install && eval", run_by("tests/test_slurm.py")),
    (r"\.venv/bin/python benchmarks/run\.py", run_by("no test: it times 64-fit builds for minutes; run it by hand")),
]


@pytest.mark.parametrize("block", readme_blocks(), ids=lambda block: block.name[:60])
def test_readme_block(block, request, tmp_path):
    if block.untested:
        pytest.skip(f"the README says: {block.untested}")
    runners = [run for pattern, run in RUNNERS if re.match(pattern, block.text)]
    assert runners, (
        f"README block {block.name!r} has no runner: add one to RUNNERS in tests/test_readme.py, "
        "or put <!-- untested: why --> on the line before its fence"
    )
    runners[0](block, request, tmp_path)
