"""Bad input, re-runs, killed builds, concurrency, a tracking server, security."""
import os
import signal
import subprocess
import sys
import time

from pathlib import Path

import pytest
import skops.io
from mlflow.tracking import MlflowClient

import tracking
from sandbox import PLOOMBER, WIDE_GRID, log_a_model
from tasks import grid, models

def statuses(runs):
    return sorted(r.info.status for r in runs)


# ------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    "entry, message",
    [
        ({"model": "sklearn.ensemble.RandomForestClassifer"}, "cannot import 'sklearn.ensemble.RandomForestClassifer'"),
        ({"model": "sklearn.linear_model.LinearRegression"}, "is not a scikit-learn classifier"),
        ({"model": "sklearn.svm.SVC", "gamma": ["auto", "sometimes"]}, "The 'gamma' parameter of SVC must be"),
        ({"model": "sklearn.svm.SVC", "kernal": "rbf"}, "unknown hyperparameter(s) kernal"),
    ],
)
def test_each_bad_grid_entry_gets_one_line_naming_it(entry, message):
    with pytest.raises(models.GridError) as error:
        for spec in grid.candidates([entry], seed=42):
            models.validate(spec)
    assert message in str(error.value)
    assert str(error.value).startswith(f"grid entry {entry['model']}")
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"grid": {"model": "sklearn.ensemble.RandomForestClassifier", "n_estimators": [0]}},
         "The 'n_estimators' parameter of RandomForestClassifier must be an int in the range [1, inf)"),
        ({"args": ["--env--compare_metric", "roc_auc"]}, "compare_metric 'roc_auc' is not a metric the fits log"),
        ({"args": ["--env--mlflow_tracking_uri", "ftp://example.com/store"]}, "expected one of sqlite, http"),
        ({"args": ["--env--mlflow_tracking_uri", "sqlite:////no/such/folder/mlflow.db"]},
         "folder /no/such/folder does not exist"),
        ({"args": ["--env--registered_model_name", "team/iris"]}, "registered_model_name 'team/iris': MLflow does not allow"),
        ({"args": ["--env--score_input", "no-such.csv"]}, "score_input 'no-such.csv': no such file"),
        ({"args": ["--env--score_input", "flowers.csv"], "file": ("flowers.csv", "sepal_length,petal_width\n5.1,0.2\n")},
         "score_input 'flowers.csv': missing column(s) sepal_width, petal_length"),
    ],
)
def test_bad_input_stops_the_build_before_any_run(project, change, message):
    if "grid" in change:
        project.add_grid_entry(**change["grid"])
    if "file" in change:
        name, text = change["file"]
        (project.path / name).write_text(text)
    result = project.build(*change.get("args", []), check=False)

    assert result.returncode != 0
    assert message in result.stdout + result.stderr
    assert not project.store.exists()
    assert not (project.path / "products" / "fit").exists()


def test_status_shows_a_grid_that_a_build_refuses_without_checking_its_models(project):
    # `ploomber status` fits nothing, so it leaves the model checks (and
    # scikit-learn's import) to the build, which names the bad entry.
    project.add_grid_entry("sklearn.svm.SVC", kernal="rbf")
    status = subprocess.run([PLOOMBER, "status"], cwd=project.path, capture_output=True, text=True)
    assert status.returncode == 0, status.stderr
    assert "fit-SVC" in status.stdout

    build = project.build(check=False)
    assert build.returncode != 0
    assert "grid entry sklearn.svm.SVC: unknown hyperparameter(s) kernal" in build.stdout + build.stderr
    assert not project.store.exists()


@pytest.mark.parametrize(
    "cv_folds, message",
    [
        ("1", "cv_folds 1: expected an integer of at least 2"),
        ("2.5", "cv_folds 2.5: expected an integer of at least 2"),
        # iris: 50 flowers a class, 35 of them in the training split
        ("36", "cv_folds 36: expected an integer of at least 2 and at most 35, the rows of the smallest class"),
    ],
)
def test_a_bad_cv_folds_stops_the_build_before_any_fit_run(project, cv_folds, message):
    result = project.build("--env--cv_folds", cv_folds, check=False)

    assert result.returncode != 0
    assert message in result.stdout + result.stderr
    assert not (project.path / "products" / "fit").exists()
    assert not project.store.exists() or not project.fit_runs()


# ------------------------------------------------------------ re-runs


def test_an_up_to_date_rebuild_makes_no_runs_and_force_makes_a_fresh_set(project):
    project.build()
    first = {r.info.run_id for r in project.fit_runs()}
    project.build()
    assert {r.info.run_id for r in project.fit_runs()} == first

    project.build("--force")
    runs = project.fit_runs()
    fresh = {r.info.run_id for r in runs} - first
    assert len(runs) == 16 and len(fresh) == 8
    assert statuses(runs) == ["FINISHED"] * 16
    board = (project.path / "products" / "leaderboard.csv").read_text()
    assert all(run_id in board for run_id in fresh)
    assert not any(run_id in board for run_id in first)


# ------------------------------------------------------------ killed builds


def test_a_killed_build_leaves_no_run_running_after_the_next_build(project):
    build = subprocess.Popen(
        project.build_command(), cwd=project.path, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 180
    running = []
    while not running and time.monotonic() < deadline and build.poll() is None:
        time.sleep(0.2)
        try:
            running = [r for r in project.fit_runs() if r.info.status == "RUNNING"]
        except Exception:  # the store or experiment does not exist yet
            pass
    os.killpg(build.pid, signal.SIGKILL)
    build.wait()
    assert running, "the build finished before a run was seen RUNNING"

    result = project.build()
    runs = project.fit_runs()
    assert "RUNNING" not in statuses(runs)
    killed = {r.info.run_id for r in runs if r.info.status == "KILLED"}
    assert {r.info.run_id for r in running} <= killed
    assert "Marked KILLED" in result.stdout
    finished_names = {r.info.run_name for r in runs if r.info.status == "FINISHED"}
    assert len(finished_names) == 8  # the grid is whole again
    # the killed build's parent run too, and the new build's is closed
    client = project.client()
    experiment = client.get_experiment_by_name("iris-grid")
    parents = client.search_runs([experiment.experiment_id], filter_string="tags.`grid.role` = 'build'")
    assert sorted(p.info.status for p in parents) == ["FINISHED", "KILLED"]


# ------------------------------------------------------------ concurrency


def test_a_wide_grid_built_twice_on_one_store_loses_no_run(project):
    # both workers writing at once, to a fresh store and then to one that holds runs
    project.set_grid(WIDE_GRID)
    for build in range(2):
        project.build(*(["--force"] if build else []))

    client = project.client()
    runs = project.fit_runs()
    assert len(runs) == 2 * 64
    assert statuses(runs) == ["FINISHED"] * (2 * 64)
    experiment_id = runs[0].info.experiment_id
    models_by_run, token = {}, None
    while True:
        page = client.search_logged_models([experiment_id], max_results=100, page_token=token)
        models_by_run.update({m.source_run_id: m for m in page})
        token = page.token
        if not token:
            break
    for run in runs:
        assert set(run.data.metrics) == {*models.METRICS, *models.CV_METRICS}
        artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
        assert {tracking.REPORT_ARTIFACT, tracking.CONFUSION_MATRIX_ARTIFACT} <= artifacts
        assert run.info.run_id in models_by_run


# ------------------------------------------------------------ tracking server


def test_a_tracking_server_gets_whole_runs_and_no_secrets(project, mlflow_server):
    url, _ = mlflow_server
    project.tracking_uri = url.replace("http://", "http://alice:s3cr3t-token@")
    result = project.build()
    assert f"MLflow runs go to {url.replace('http://', 'http://alice:***@')} (from --env--mlflow_tracking_uri)" in result.stdout
    assert "s3cr3t-token" not in result.stdout + result.stderr

    client = MlflowClient(url)
    runs = client.search_runs(
        [client.get_experiment_by_name("iris-grid").experiment_id], filter_string=f"tags.`{tracking.ROLE_TAG}` = 'fit'"
    )
    assert statuses(runs) == ["FINISHED"] * 8
    for run in runs:
        assert set(run.data.metrics) == {*models.METRICS, *models.CV_METRICS}
        artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
        assert {tracking.REPORT_ARTIFACT, tracking.CONFUSION_MATRIX_ARTIFACT} <= artifacts
        logged = " ".join(map(str, [*run.data.params.values(), *run.data.tags.values()]))
        assert "s3cr3t-token" not in logged
    for record in (project.path / "products" / "fit").glob("*.run.json"):
        assert "s3cr3t-token" not in record.read_text()


# ------------------------------------------------------------ security


class Payload:
    """Stands in for an object an attacker would slip into a model file."""


def test_a_tampered_model_is_refused(tmp_path):
    uri, model_uri, raw = log_a_model(tmp_path)
    assert tracking.load_model(model_uri, uri).predict(raw.head(3)).shape == (3,)

    # the attacker swaps the estimator file and adds its type to the reviewed
    # list that the model ships (its copy of tracking/model_files.py)
    logged = MlflowClient(uri).get_logged_model(model_uri.removeprefix("models:/"))
    stored = Path(logged.artifact_location.removeprefix("file://"))
    skops.io.dump({"payload": Payload()}, stored / "artifacts" / "estimator.skops")
    shipped_list = stored / "code" / "tracking" / "model_files.py"
    shipped_list.write_text(shipped_list.read_text().replace("SKOPS_TRUSTED_TYPES = (", f"SKOPS_TRUSTED_TYPES = (\n    '{__name__}.Payload',"))

    with pytest.raises(tracking.UntrustedModelError, match=r"test_reliability\.Payload"):
        tracking.load_model(model_uri, uri)


def test_telemetry_is_off_in_every_python_of_the_venv():
    check = (
        "from ploomber_core.telemetry.telemetry import check_telemetry_enabled\n"
        "from mlflow.telemetry.utils import is_telemetry_disabled\n"
        "print(check_telemetry_enabled(), is_telemetry_disabled())"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "PYTEST_CURRENT_TEST")}
    result = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, env=env, cwd="/")
    assert result.stdout.split() == ["False", "True"]
