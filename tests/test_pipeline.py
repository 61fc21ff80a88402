"""End-to-end builds of the pipeline, checked through the MLflow store as a user would."""
import json
import re
import subprocess
import sys
from html.parser import HTMLParser

import pandas as pd
import pytest
import yaml

import tracking
from tasks import data, models
from sandbox import PLOOMBER
from test_promotion import runs_with_role

HELD_OUT = set(models.METRICS)
CROSS_VALIDATED = set(models.CV_METRICS)


def fit_task_name(run):
    return run.data.tags["ploomber.task"]


def logged_model_of(client, run):
    [logged] = client.search_logged_models(
        experiment_ids=[run.info.experiment_id], filter_string=f"source_run_id = '{run.info.run_id}'"
    )
    return logged


def assert_fit_run_is_whole(client, run, project):
    assert run.info.status == "FINISHED"
    assert fit_task_name(run) == f"fit-{run.info.run_name}"

    estimator_class = models._load_classifier(run.data.tags["model.class"])
    assert set(estimator_class().get_params()) <= set(run.data.params)
    assert set(run.data.metrics) == HELD_OUT | CROSS_VALIDATED
    assert all(0 <= value <= 1 for value in run.data.metrics.values())
    assert run.data.params["cv.folds"] == "5"

    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {tracking.CONFUSION_MATRIX_ARTIFACT, tracking.REPORT_ARTIFACT} <= artifacts
    # the confusion matrix counts the 45 held-out rows, its diagonal the accurate ones
    svg = open(client.download_artifacts(run.info.run_id, tracking.CONFUSION_MATRIX_ARTIFACT)).read()
    counts = [int(count) for count in re.findall(r'<text class="count"[^>]*>(\d+)</text>', svg)]
    assert len(counts) == 9 and sum(counts) == 45
    assert sum(counts[::4]) / 45 == pytest.approx(run.data.metrics["accuracy"])
    report = client.download_artifacts(run.info.run_id, tracking.REPORT_ARTIFACT)
    html = open(report).read()
    assert "<svg" in html and "aria-label=\"confusion matrix of 45 rows" in html
    assert "Fit one model of the search" in html
    assert run.info.run_id in html  # printed by the notebook
    assert "start_fit_run" not in html  # code cells are hidden
    assert "Cross-validated scores on the training split" in html

    [dataset_input] = run.inputs.dataset_inputs
    assert dataset_input.dataset.name == "iris-features"

    # the logged model loads back (skops, reviewed types only) and reproduces its score from raw rows
    logged = logged_model_of(client, run)
    model = tracking.load_model(f"models:/{logged.model_id}", project.tracking_uri)
    table = pd.read_parquet(project.path / "products" / "features.parquet")
    _, X_test, _, y_test = models.split(table, data.TARGET, test_size=0.3, seed=42)
    assert models.evaluate(y_test, model.predict(X_test[data.RAW_COLUMNS])) == pytest.approx(
        {m: run.data.metrics[m] for m in HELD_OUT}
    )


def test_tracked_build_logs_every_fit_whole(built_project):
    client = built_project.client()
    runs = built_project.fit_runs()

    assert len(runs) == 8
    assert len({r.info.run_name for r in runs}) == 8
    families = sorted(r.data.tags["model.family"] for r in runs)
    assert families == ["AdaBoostClassifier"] * 4 + ["RandomForestClassifier"] * 4
    for run in runs:
        assert_fit_run_is_whole(client, run, built_project)


def test_the_fits_with_most_estimators_start_first(built_project):
    # the grid lists 10 then 20 estimators; the workers start the 20s first, so that
    # neither waits at the end for the other's largest fit
    runs = sorted(built_project.fit_runs(), key=lambda run: run.info.start_time)
    assert [run.data.params["n_estimators"] for run in runs] == ["20"] * 4 + ["10"] * 4


def test_every_fit_logs_the_same_training_dataset_as_mlflow_computes_it(built_project):
    # each worker computes the dataset once (tracking.fit_runs.dataset_entity), not once per fit
    import mlflow

    features = built_project.path / "products" / "features.parquet"
    X_train, _, y_train, _ = models.split(pd.read_parquet(features), data.TARGET, test_size=0.3, seed=42)
    expected = mlflow.data.from_pandas(
        X_train.assign(**{data.TARGET: y_train}), source=str(features), targets=data.TARGET, name="iris-features"
    )
    inputs = [d for run in built_project.fit_runs() for d in run.inputs.dataset_inputs]
    assert len(inputs) == 8
    for dataset_input in inputs:
        dataset = dataset_input.dataset
        assert (dataset.name, dataset.digest) == ("iris-features", expected.digest)
        assert json.loads(dataset.profile) == expected.profile == {"num_rows": len(X_train), "num_elements": X_train.size + len(y_train)}
        assert json.loads(dataset.schema) == json.loads(json.dumps({"mlflow_colspec": expected.schema.to_dict()}))
        assert {(tag.key, tag.value) for tag in dataset_input.tags} == {("mlflow.data.context", "training")}


class References(HTMLParser):
    """Every address an HTML page names (src, href, CSS url() and @import) and its <title>."""

    def __init__(self, html):
        super().__init__()
        self.addresses, self.title, self._in = [], "", None
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self._in = tag
        self.addresses += [value for name, value in attrs if name in ("src", "href", "srcset", "data") and value]
        for name, value in attrs:
            if name == "style" and value:
                self.addresses += css_addresses(value)

    def handle_data(self, text):
        if self._in == "title":
            self.title += text
        elif self._in == "style":
            self.addresses += css_addresses(text)

    def handle_endtag(self, tag):
        self._in = None


def css_addresses(css):
    return re.findall(r"url\(\s*['\"]?([^'\")]+)", css) + re.findall(r"@import\s+['\"]([^'\"]+)", css)


def assert_report_is_self_contained(html, run_name):
    assert len(html.encode()) <= tracking.REPORT_SIZE_LIMIT
    page = References(html)
    assert page.title == run_name
    outside = [a for a in page.addresses if not a.startswith(("#", "data:"))]
    assert outside == [], f"the report loads from outside itself: {outside}"
    assert "<script" not in html.lower()


def test_reports_are_self_contained_and_small(built_project):
    client = built_project.client()
    for run in built_project.fit_runs():
        html = open(client.download_artifacts(run.info.run_id, tracking.REPORT_ARTIFACT)).read()
        assert_report_is_self_contained(html, run.info.run_name)
        # the notebook's outputs are all there: the scores table, the estimator, the confusion matrix
        assert "<table" in html and "precision_macro" in html
        assert run.data.tags["model.family"] + "(" in html
        assert html.count("<svg ") == 1


def test_runs_are_tagged_with_the_commit(built_project):
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=built_project.path, capture_output=True, text=True
    ).stdout.strip()
    client = built_project.client()
    compare = client.get_experiment_by_name(tracking.compare_experiment("iris-grid"))
    runs = built_project.fit_runs() + client.search_runs([compare.experiment_id])
    assert {r.data.tags[tracking.ROLE_TAG] for r in runs} == {"fit", "compare"}
    for run in runs:
        # MLflow's own lineage tags, which its UI shows as the run's source and commit
        assert run.data.tags["mlflow.source.git.commit"] == head
        assert run.data.tags["mlflow.source.name"] == str(built_project.path / "pipeline.yaml")
        assert run.data.tags["mlflow.source.type"] == "LOCAL"
        assert run.data.tags["git.dirty"] == "false"


def test_hooks_log_to_the_builds_store_not_the_default_one(built_project):
    # MLFLOW_TRACKING_URI pointed at the decoy during the build
    assert not built_project.decoy.exists()
    assert not (built_project.path / "mlruns").exists()


def test_the_command_line_wins_over_mlflow_tracking_uri(built_project):
    # built with MLFLOW_TRACKING_URI pointing at a decoy and --env--mlflow_tracking_uri at the project's store
    line = f"MLflow runs go to {built_project.tracking_uri} (from --env--mlflow_tracking_uri)"
    assert built_project.output.stdout.count("MLflow runs go to") == 1
    assert line in built_project.output.stdout
    assert not built_project.decoy.exists()


def test_a_build_shows_no_mlflow_info_lines(built_project):
    # a fresh store: MLflow creates its tables in the main process, then every worker connects
    output = built_project.output.stdout + built_project.output.stderr
    assert "name " in output and "Ran?" in output  # Ploomber's summary
    for noise in ("INFO mlflow", "Create SQLAlchemy engine", "alembic", "Creating initial MLflow database tables"):
        assert noise not in output


def test_artifacts_live_beside_the_store(built_project):
    for run in built_project.fit_runs():
        assert run.info.artifact_uri.startswith((built_project.path / "mlartifacts").as_uri())


def test_a_new_model_family_is_one_grid_entry(project):
    default_grid = project.grid()
    project.add_grid_entry("sklearn.linear_model.LogisticRegression", C=[0.01, 1.0], max_iter=500)
    project.add_grid_entry("sklearn.dummy.DummyClassifier", strategy="most_frequent")
    project.build()

    client = project.client()
    runs = project.fit_runs()
    assert len(runs) == 8 + 3
    for run in runs:
        assert_fit_run_is_whole(client, run, project)

    # compare ranks them: highest cross-validated mean first, then the smaller
    # std, then the run name; the held-out score never decides
    board = pd.read_csv(project.path / "products" / "leaderboard.csv")
    assert set(board["run_id"]) == {r.info.run_id for r in runs}
    by_rank = sorted(
        runs,
        key=lambda r: (-r.data.metrics["cv_accuracy_mean"], r.data.metrics["cv_accuracy_std"], r.info.run_name),
    )
    assert list(board["run_id"]) == [r.info.run_id for r in by_rank]
    assert board.iloc[-1]["model_family"] == "DummyClassifier"

    # back to the default grid, whose fits are all up to date: no fit runs,
    # but compare ranks the grid as it now is, once
    project.set_grid(default_grid)
    project.build()
    assert len(project.fit_runs()) == 8 + 3
    board = pd.read_csv(project.path / "products" / "leaderboard.csv")
    default_runs = {r.info.run_id for r in runs if r.data.tags["model.family"] in {"RandomForestClassifier", "AdaBoostClassifier"}}
    assert len(default_runs) == 8 and set(board["run_id"]) == default_runs
    compares = len(runs_with_role(project.client(), "compare"))
    project.build()
    assert len(runs_with_role(project.client(), "compare")) == compares


def test_tracking_off_touches_no_store(project):
    project.build(track=False)

    assert (project.path / "products" / "compare.ipynb").exists()
    assert not project.store.exists()
    for folder in ("mlartifacts", "mlruns"):
        assert not (project.path / folder).exists()
    compare = (project.path / "products" / "compare.ipynb").read_text()
    assert "Tracking is off: there are no MLflow runs to compare and no model registry to use" in compare
    score = (project.path / "products" / "score.ipynb").read_text()
    assert "Tracking is off: there is no model registry to load the champion from" in score
    assert pd.read_csv(project.path / "products" / "predictions.csv").empty


def test_a_failing_fit_leaves_a_failed_run_and_a_rebuild_reruns_only_it(project):
    # each value is valid alone, so only fitting finds out
    project.add_grid_entry("sklearn.ensemble.RandomForestClassifier", bootstrap=False, oob_score=True)
    result = project.build(check=False)
    assert result.returncode != 0

    client = project.client()
    runs = project.fit_runs()
    failed = [r for r in runs if r.info.status == "FAILED"]
    assert [r.info.run_name for r in failed] == [
        "RandomForestClassifier-bootstrap=False-oob_score=True"
    ]
    assert sorted(r.info.status for r in runs) == ["FAILED"] + ["FINISHED"] * 8
    report = open(client.download_artifacts(failed[0].info.run_id, tracking.REPORT_ARTIFACT)).read()
    assert "Out of bag estimation only available if bootstrap=True" in report
    assert_report_is_self_contained(report, failed[0].info.run_name)
    assert not (project.path / "products" / "leaderboard.csv").exists()
    # the build's parent run, which holds every fit, failed with it
    [parent] = {r.data.tags["mlflow.parentRunId"] for r in runs}
    assert client.get_run(parent).info.status == "FAILED"

    # after the fix, only what failed runs again
    entries = project.grid()
    entries[-1]["bootstrap"] = True
    project.set_grid(entries)
    project.build()
    rerun = project.fit_runs()
    new = {r.info.run_id for r in rerun} - {r.info.run_id for r in runs}
    assert [r.info.run_name for r in rerun if r.info.run_id in new] == [
        "RandomForestClassifier-bootstrap=True-oob_score=True"
    ]
    assert sorted(r.info.status for r in rerun) == ["FAILED"] + ["FINISHED"] * 9
    assert (project.path / "products" / "leaderboard.csv").exists()
    [rebuilt] = [r for r in rerun if r.info.run_id in new]
    assert rebuilt.data.tags["mlflow.parentRunId"] != parent
    assert client.get_run(rebuilt.data.tags["mlflow.parentRunId"]).info.status == "FINISHED"


def test_a_bad_grid_entry_stops_the_build_before_any_run(project):
    project.add_grid_entry("sklearn.ensemble.RandomForestClassifier", n_estimator=[10])
    result = project.build(check=False)

    assert result.returncode != 0
    message = "grid entry sklearn.ensemble.RandomForestClassifier: unknown hyperparameter(s) n_estimator"
    assert message in result.stdout + result.stderr
    assert not project.store.exists()
    assert not (project.path / "products").exists()


def test_a_fit_notebook_run_by_hand_logs_its_params_and_scores(project):
    # Jupyter runs no hook to close the run: what waits is logged when the kernel exits
    project.build(track=False)
    env = yaml.safe_load((project.path / "env.yaml").read_text())
    env.update(track=True, mlflow_tracking_uri=project.tracking_uri)
    (project.path / "env.yaml").write_text(yaml.safe_dump(env))
    subprocess.run([PLOOMBER, "nb", "--inject"], cwd=project.path, check=True, capture_output=True)
    by_hand = subprocess.run(
        [sys.executable, "-c", "import runpy; runpy.run_path('scripts/fit.py')"],
        cwd=project.path, capture_output=True, text=True,
    )
    assert by_hand.returncode == 0, by_hand.stderr

    [run] = project.fit_runs()
    assert run.info.status == "FINISHED"
    assert set(run.data.metrics) == HELD_OUT | CROSS_VALIDATED
    assert run.data.params["cv.folds"] == "5" and "n_estimators" in run.data.params
