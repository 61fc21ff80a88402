"""The champion: compare's own run, the model registry, batch scoring and REST serving."""
import json
import os
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import mlflow.pyfunc
import pandas as pd
import pytest

import tracking
from sandbox import ROOT, free_ports, make_project, serving
from tasks import charts, data, models

MODEL_NAME = "iris-classifier"


@pytest.fixture(scope="module")
def crowned(tmp_path_factory):
    """The default grid plus a deliberately weak model, built once with tracking on."""
    project = make_project(tmp_path_factory.mktemp("crowned"))
    project.add_grid_entry("sklearn.dummy.DummyClassifier", strategy="most_frequent")
    project.build()
    return project


def champion_version(client):
    return client.get_model_version_by_alias(MODEL_NAME, tracking.CHAMPION_ALIAS)


def versions(client):
    found = client.search_model_versions(f"name = '{MODEL_NAME}'")
    return {str(v.version): v.run_id for v in found}


def compare_runs(client):
    experiment = client.get_experiment_by_name("iris-grid-compare")
    return client.search_runs([experiment.experiment_id], order_by=["attributes.start_time ASC"])


def held_out_rows(project):
    """The held-out rows as score reads them: the raw columns only."""
    table = pd.read_parquet(project.path / "products" / "features.parquet")
    return models.split(table, data.TARGET, test_size=0.3, seed=42)[1][data.RAW_COLUMNS]


def test_the_champion_is_a_best_run_never_the_weak_one(crowned):
    client = crowned.client()
    runs = crowned.fit_runs()
    assert len(runs) == 9
    best_cv = max(r.data.metrics["cv_accuracy_mean"] for r in runs)

    version = champion_version(client)
    champion_run = client.get_run(version.run_id)
    assert champion_run.data.tags[tracking.ROLE_TAG] == "fit"
    assert champion_run.data.metrics["cv_accuracy_mean"] == best_cv
    held_out = champion_run.data.metrics["accuracy"]
    assert champion_run.data.tags["model.family"] != "DummyClassifier"
    assert versions(client) == {str(version.version): version.run_id}

    # loads through the alias, with the reviewed skops types, and scores as logged
    model = tracking.load_model(f"models:/{MODEL_NAME}@champion", crowned.tracking_uri)
    table = pd.read_parquet(crowned.path / "products" / "features.parquet")
    _, X_test, _, y_test = models.split(table, data.TARGET, test_size=0.3, seed=42)
    assert models.evaluate(y_test, model.predict(X_test[data.RAW_COLUMNS]))["accuracy"] == held_out


def test_compare_logs_a_run_of_its_own_with_the_leaderboard_and_chart(crowned):
    client = crowned.client()
    [run] = compare_runs(client)
    assert run.info.status == "FINISHED"
    assert run.data.tags[tracking.ROLE_TAG] == "compare"
    assert run.info.run_id not in {r.info.run_id for r in crowned.fit_runs()}
    assert run.data.tags["champion.version"] == str(champion_version(client).version)

    table = client.load_table(run.info.experiment_id, tracking.LEADERBOARD_TABLE, run_ids=[run.info.run_id])
    board = pd.read_csv(crowned.path / "products" / "leaderboard.csv")
    assert list(table["run_id"]) == list(board["run_id"])
    assert table.iloc[0]["run_id"] == champion_version(client).run_id
    # ranked by cross-validation; the held-out scores are reported on the run and the version
    assert run.data.metrics["best_cv_accuracy_mean"] == board.iloc[0]["cv_accuracy_mean"]
    assert run.data.metrics["held_out_accuracy"] == board.iloc[0]["accuracy"]
    assert set(board.columns[:6]) == {"run_id", "run_name", "model_family", "cv_accuracy_mean", "cv_accuracy_std", "accuracy"}
    version = champion_version(client)
    assert float(version.tags["held_out_f1_macro"]) == pytest.approx(board.iloc[0]["f1_macro"], abs=1e-5)
    assert float(version.tags["cv_accuracy_mean"]) == pytest.approx(board.iloc[0]["cv_accuracy_mean"], abs=1e-5)

    chart = Path(client.download_artifacts(run.info.run_id, tracking.LEADERBOARD_CHART))
    assert chart.read_bytes().startswith(b"\x89PNG")
    notebook = (crowned.path / "products" / "compare.ipynb").read_text()
    assert "image/png" in notebook  # the chart, shown in the report
    assert f"{MODEL_NAME}@champion is now version" in notebook
    assert "cv accuracy (mean" in notebook  # the leaderboard as the report shows it


def test_score_output_equals_the_champions_own_predictions(crowned):
    client = crowned.client()
    version = champion_version(client)
    predictions = pd.read_csv(crowned.path / "products" / "predictions.csv")
    record = json.loads((crowned.path / "products" / "predictions.model.json").read_text())
    assert record["version"] == str(version.version)
    assert record["run_id"] == version.run_id

    X_test = held_out_rows(crowned)
    model = tracking.load_model(f"models:/{MODEL_NAME}/{version.version}", crowned.tracking_uri)
    assert len(predictions) == len(X_test) == record["rows"]
    pd.testing.assert_frame_equal(predictions[X_test.columns], X_test.reset_index(drop=True), check_dtype=False)
    assert list(predictions["prediction"]) == list(model.predict(X_test))
    names = dict(enumerate(["setosa", "versicolor", "virginica"]))
    assert list(predictions["predicted_class"]) == [names[p] for p in predictions["prediction"]]


def test_score_reads_a_batch_of_measurements_from_a_csv(crowned):
    flowers = pd.DataFrame(
        {"sepal_length": [5.1, 6.7], "sepal_width": [3.5, 3.0], "petal_length": [1.4, 5.2], "petal_width": [0.2, 2.3]}
    )
    flowers.to_csv(crowned.path / "flowers.csv", index=False)
    before = versions(crowned.client())
    crowned.build("--env--score_input", "flowers.csv")

    predictions = pd.read_csv(crowned.path / "products" / "predictions.csv")
    model = tracking.load_model(f"models:/{MODEL_NAME}@champion", crowned.tracking_uri)
    assert list(predictions["prediction"]) == list(model.predict(flowers))
    assert json.loads((crowned.path / "products" / "predictions.model.json").read_text())["input"] == "flowers.csv"
    # only score ran
    assert versions(crowned.client()) == before
    assert len(compare_runs(crowned.client())) == 1
    assert len(crowned.fit_runs()) == 9


def test_the_same_runs_or_a_forced_rebuild_leave_the_alias_where_it_is(project):
    project.build()
    client = project.client()
    first = champion_version(client)
    assert versions(client) == {str(first.version): first.run_id}

    # the same runs compared again: no new version, the alias stays
    build = project.build_command()
    compare_again = [build[0], "task", "compare", "--force", *build[2:]]
    rerun = subprocess.run(compare_again, cwd=project.path, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    assert len(compare_runs(client)) == 2
    assert versions(client) == {str(first.version): first.run_id}
    assert champion_version(client).version == first.version

    # a forced build makes new runs that score as the champion did: a tie, and the champion stays
    project.build("--force")
    board = pd.read_csv(project.path / "products" / "leaderboard.csv")
    assert board.iloc[0]["run_id"] != first.run_id
    assert versions(client) == {str(first.version): first.run_id}
    assert champion_version(client).version == first.version
    decision = compare_runs(client)[-1].data.tags
    assert decision["champion.decision"] == "kept" and "does not beat" in decision["champion.rule"]


@pytest.fixture(scope="module")
def served(crowned, tmp_path_factory):
    """The champion served by the README's very command, on a free port; yields its URL."""
    readme = (ROOT / "README.md").read_text()
    serve = re.search(r"^mlflow models serve .*$", readme, re.MULTILINE).group(0).split()
    assert serve[serve.index("--host") + 1] == "127.0.0.1" and "--env-manager local" in " ".join(serve)

    [port] = free_ports(1)
    serve[serve.index("--port") + 1] = str(port)
    url = f"http://127.0.0.1:{port}"
    venv_bin = str(Path(sys.executable).parent)  # on the PATH, as `source .venv/bin/activate` puts it
    env = {
        **os.environ, "PATH": f"{venv_bin}:{os.environ['PATH']}", "MLFLOW_TRACKING_URI": crowned.tracking_uri,
        "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "false",  # as the README exports it: no pickle is needed
    }
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    with serving(serve, f"{url}/ping", log, cwd=crowned.path, env=env):
        yield url


def ask(url, payload):
    request = urllib.request.Request(f"{url}/invocations", data=payload.encode(), headers={"Content-Type": "application/json"})
    return json.loads(urllib.request.urlopen(request, timeout=30).read())


def test_the_readme_rest_example_is_answered_by_the_served_champion(crowned, served):
    readme = (ROOT / "README.md").read_text()
    payload = re.search(r"-d '(\{.*?\})'", readme).group(1)
    promised = re.search(r"It answers `(\{.*?\})`", readme).group(1)
    assert re.search(r"^export MLFLOW_ALLOW_PICKLE_DESERIALIZATION=false", readme, re.MULTILINE)
    split = json.loads(payload)["dataframe_split"]
    assert split["columns"] == data.RAW_COLUMNS  # the four measurements, nothing derived

    answer = ask(served, payload)
    rows = pd.DataFrame(split["data"], columns=split["columns"])
    model = tracking.load_model(f"models:/{MODEL_NAME}@champion", crowned.tracking_uri)
    assert answer["predictions"] == list(model.predict(rows))
    assert answer == json.loads(promised)


def test_loaded_served_and_scored_champion_agree_on_raw_rows(crowned, served):
    # the rows score predicted last (held-out rows, or a CSV), raw columns only
    scored = pd.read_csv(crowned.path / "products" / "predictions.csv")
    raw = scored[data.RAW_COLUMNS]
    mlflow.set_tracking_uri(crowned.tracking_uri)
    loaded = mlflow.pyfunc.load_model(f"models:/{MODEL_NAME}@champion")
    answer = ask(served, json.dumps({"dataframe_split": raw.to_dict(orient="split", index=False)}))

    assert len(raw) > 0
    assert list(loaded.predict(raw)) == answer["predictions"] == list(scored["prediction"])


def test_the_chart_of_a_large_grid_shows_its_best_runs_and_says_so():
    runs = charts.CHART_RUNS + 15
    board = pd.DataFrame({
        "run_id": [f"id{i}" for i in range(runs)],
        "run_name": [f"run{i}" for i in range(runs)],
        "model_family": ["Forest", "Boost"] * (runs // 2) + ["Forest"] * (runs % 2),
        "cv_accuracy_mean": [1 - i / 100 for i in range(runs)],
        "cv_accuracy_std": [0.01] * runs,
        "accuracy": [0.9] * runs,
    })
    [ax] = charts.leaderboard_chart(board, "accuracy", "promoted to champion").axes
    shown = [label.get_text() for label in ax.get_yticklabels()]
    assert sorted(shown) == sorted(board["run_name"].head(charts.CHART_RUNS))
    assert ax.get_title().startswith(f"Best {charts.CHART_RUNS} of {runs} runs.")


@pytest.mark.parametrize("outcome, was_champion, label", [
    ("first champion", False, "first champion"),
    ("promoted", False, "promoted to champion"),
    ("kept", False, "challenger, the champion kept"),
    ("kept", True, "the champion, kept"),
])
def test_the_chart_labels_the_best_run_with_what_the_decision_made_of_it(outcome, was_champion, label):
    board = pd.DataFrame({
        "run_id": ["a", "b"], "run_name": ["best", "second"], "model_family": ["Forest", "Boost"],
        "cv_accuracy_mean": [0.96, 0.9], "cv_accuracy_std": [0.02, 0.03], "accuracy": [0.95, 0.9],
    })
    assert charts.best_run_label(outcome, was_champion) == label
    figure = charts.leaderboard_chart(board, "accuracy", label)
    [ax] = figure.axes
    # beside the best run's bar only, in the legend, and in the report's alt text
    labelled = [text.get_text() for text in ax.texts if label in text.get_text()]
    assert labelled == [" 0.9600 ± 0.0200  " + label]
    assert "champion" not in " ".join(t.get_text() for t in ax.texts if t.get_text() not in labelled)
    assert f"best: {label}" in [text.get_text() for text in ax.get_legend().get_texts()]
    assert figure.get_label().endswith(f"best, best: {label}")
