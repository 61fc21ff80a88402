"""Your own data: a copy of the project, built on iris, then adapted to scikit-learn's
breast_cancer by changing only tasks/data.py and the feature tasks of pipeline.yaml and
built again end to end, as the README's recipe says (no --force). And a project whose
tasks/data.py changes by one constant: the next build runs everything after get again."""
import inspect
import json
import os
import subprocess
import sys

import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer

import tracking
from sandbox import PLOOMBER, make_project
from tasks import data, models

RAW_COLUMNS = [name.replace(" ", "_") for name in load_breast_cancer().feature_names]
# get stays as it is: Ploomber must see that the rest of the module changed
GET = inspect.getsource(data.get)

DATA_MODULE = f'''"""The dataset: breast cancer diagnoses (Wisconsin), 30 measurements of a cell sample."""
from tasks import rows

DATASET_NAME = "breast_cancer"
TARGET = "target"
RAW_COLUMNS = {RAW_COLUMNS!r}
CLASS_NAMES = ["malignant", "benign"]


{GET}

def load():
    from sklearn.datasets import load_breast_cancer

    frame = load_breast_cancer(as_frame=True).frame
    frame.columns = [c.replace(" ", "_") for c in frame.columns]
    return frame


def radius_ratio(raw):
    return (raw["worst_radius"] / raw["mean_radius"]).rename("radius_ratio")


FEATURES = [radius_ratio]


def ratio(product, upstream):
    rows.save_feature(radius_ratio, upstream["get"], product)


def features(product, upstream):
    rows.save_features_table(upstream["get"], [upstream["ratio"]], product)
'''

IRIS_FEATURE_TASKS = """  - source: tasks.data.sepal
    product: products/sepal.parquet

  - source: tasks.data.petal
    product: products/petal.parquet
"""
CANCER_FEATURE_TASKS = """  - source: tasks.data.ratio
    product: products/ratio.parquet
"""
SETTINGS = ["--env--experiment_name", "cancer-grid", "--env--registered_model_name", "cancer-classifier"]


# a lean grid for the test; not part of the adaptation
LEAN_GRID = [
    {"model": "sklearn.ensemble.RandomForestClassifier", "n_estimators": [5, 10]},
    {"model": "sklearn.ensemble.AdaBoostClassifier", "n_estimators": [10]},
]


@pytest.fixture(scope="module")
def adapted(tmp_path_factory):
    project = make_project(tmp_path_factory.mktemp("cancer"))
    data_py, pipeline_yaml = project.path / "tasks" / "data.py", project.path / "pipeline.yaml"
    iris = {path: path.read_text() for path in (data_py, pipeline_yaml)}
    assert IRIS_FEATURE_TASKS in iris[pipeline_yaml] and GET in iris[data_py]
    cancer = {data_py: DATA_MODULE, pipeline_yaml: iris[pipeline_yaml].replace(IRIS_FEATURE_TASKS, CANCER_FEATURE_TASKS)}

    def git(*args):
        return subprocess.run(["git", *args], cwd=project.path, capture_output=True, text=True, check=True).stdout

    for path, text in cancer.items():
        path.write_text(text)
    project.changed_files = sorted(git("diff", "--name-only").split())
    project.changed_lines = sum(int(a) + int(d) for a, d, _ in (line.split("\t") for line in git("diff", "--numstat").splitlines()))
    print(f"adapting to breast_cancer: {project.changed_lines} lines added or removed in {project.changed_files}")

    # built on iris first, as the user's copy was; then the adaptation, built without --force
    for files, settings in ((iris, []), (cancer, SETTINGS)):
        for path, text in files.items():
            path.write_text(text)
        project.set_grid(LEAN_GRID)
        project.build(*settings)
    return project


def test_only_the_data_module_and_the_feature_tasks_change(adapted):
    assert adapted.changed_files == ["pipeline.yaml", "tasks/data.py"]


def test_the_whole_pipeline_runs_on_the_new_data(adapted):
    client = adapted.client()
    experiment = client.get_experiment_by_name("cancer-grid")
    runs = client.search_runs([experiment.experiment_id], filter_string=f"tags.`{tracking.ROLE_TAG}` = 'fit'")
    assert sorted(r.info.status for r in runs) == ["FINISHED"] * 3
    for run in runs:
        assert set(run.data.metrics) == {*models.METRICS, *models.CV_METRICS}
        assert run.inputs.dataset_inputs[0].dataset.name == "breast_cancer-features"

    # ranked by cross-validation, the best one crowned
    board = pd.read_csv(adapted.path / "products" / "leaderboard.csv")
    assert list(board["cv_accuracy_mean"]) == sorted(board["cv_accuracy_mean"], reverse=True)
    champion = client.get_model_version_by_alias("cancer-classifier", tracking.CHAMPION_ALIAS)
    assert champion.run_id == board.iloc[0]["run_id"]

    # score predicted the held-out raw rows, by class name too
    scored = pd.read_csv(adapted.path / "products" / "predictions.csv")
    assert list(scored.columns) == [*RAW_COLUMNS, "prediction", "predicted_class"]
    assert set(scored["predicted_class"]) == {"malignant", "benign"}

    # the champion, loaded with pyfunc, takes the 30 raw columns and computes the ratio itself;
    # in a process of its own, since this one has imported the iris project's `tasks`
    load = (
        "import io, json, sys, mlflow.pyfunc, pandas as pd\n"
        f"mlflow.set_tracking_uri({adapted.tracking_uri!r})\n"
        "model = mlflow.pyfunc.load_model('models:/cancer-classifier@champion')\n"
        "rows = pd.read_json(io.StringIO(sys.stdin.read()), orient='split')\n"
        "print(json.dumps([model.metadata.get_input_schema().input_names(), model.predict(rows).tolist()]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", load], input=scored[RAW_COLUMNS].to_json(orient="split"),
        cwd=adapted.path, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    input_names, predictions = json.loads(done.stdout.strip().splitlines()[-1])
    assert input_names == RAW_COLUMNS
    assert predictions == list(scored["prediction"])


def outdated(project):
    """Task name -> its `Outdated?` in `ploomber status`, as a user reads it."""
    status = subprocess.run(
        [PLOOMBER, "status", *project.build_command()[2:]], cwd=project.path, capture_output=True, text=True,
        env={**os.environ, "COLUMNS": "400"},  # one line a task
    )
    assert status.returncode == 0, status.stderr
    lines = status.stdout.splitlines()
    header = next(line for line in lines if "Outdated?" in line)
    column, names = header.index("Outdated?"), set(project.task_names)
    return {line.split()[0]: line[column:].split("  ")[0].strip() for line in lines if line.split()[:1] and line.split()[0] in names}


@pytest.fixture(scope="module")
def renamed(tmp_path_factory):
    """Built, then one constant of tasks/data.py changed (DATASET_NAME) and built again
    without --force, then built once more with nothing changed."""
    project = make_project(tmp_path_factory.mktemp("renamed"))
    project.set_grid([{"model": "sklearn.dummy.DummyClassifier", "strategy": ["prior"]}])
    project.task_names = ["get", "sepal", "petal", "features", "fit-DummyClassifier-strategy=prior", "compare", "score"]
    products = project.path / "products"

    def state():
        client = project.client()
        return {
            "runs": {r.info.run_id for e in client.search_experiments() for r in client.search_runs([e.experiment_id])},
            "written": {p.name: p.stat().st_mtime_ns for p in products.glob("*.*")},
        }

    project.build()
    project.before = state()
    data_py = project.path / "tasks" / "data.py"
    assert data_py.read_text().count('DATASET_NAME = "iris"') == 1
    data_py.write_text(data_py.read_text().replace('DATASET_NAME = "iris"', 'DATASET_NAME = "flowers"'))
    project.outdated_after_edit = outdated(project)
    project.build()
    project.after = state()
    project.outdated_after_rebuild = outdated(project)
    project.build()
    project.after_noop = state()
    return project


def test_a_changed_constant_of_the_data_module_makes_get_and_all_after_it_outdated(renamed):
    assert renamed.outdated_after_edit == {
        "get": "Source code", **{name: "Upstream" for name in renamed.task_names[1:]}
    }
    assert renamed.outdated_after_rebuild == {name: "False" for name in renamed.task_names}


def test_the_rebuild_without_force_fits_compares_and_scores_on_the_new_table(renamed):
    client = renamed.client()
    new_runs = renamed.after["runs"] - renamed.before["runs"]
    [fit] = [client.get_run(r) for r in new_runs if client.get_run(r).data.tags.get(tracking.ROLE_TAG) == "fit"]
    # the fit ran on the table get and features wrote again, with the module's new name
    assert [d.dataset.name for d in fit.inputs.dataset_inputs] == ["flowers-features"]
    for product in ("get.parquet", "features.parquet", "leaderboard.csv", "predictions.csv"):
        assert renamed.after["written"][product] > renamed.before["written"][product], product
    # compare ranked the new fit, the champion is its model, and score used it
    board = pd.read_csv(renamed.path / "products" / "leaderboard.csv")
    assert list(board["run_id"]) == [fit.info.run_id]
    champion = client.get_model_version_by_alias("iris-classifier", tracking.CHAMPION_ALIAS)
    assert champion.run_id == fit.info.run_id
    assert "another tasks/data.py than this project's" in champion.tags["promotion.rule"]
    scored_with = json.loads((renamed.path / "products" / "predictions.model.json").read_text())
    assert scored_with["run_id"] == fit.info.run_id


def test_an_up_to_date_rebuild_after_it_runs_nothing(renamed):
    assert renamed.after_noop == renamed.after
