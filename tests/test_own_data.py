"""Your own data: a copy of the project adapted to scikit-learn's breast_cancer by
changing only tasks/data.py and the feature tasks of pipeline.yaml, built end to end."""
import json
import subprocess
import sys

import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer

import tracking
from sandbox import make_project
from tasks import models

RAW_COLUMNS = [name.replace(" ", "_") for name in load_breast_cancer().feature_names]

DATA_MODULE = f'''"""The dataset: breast cancer diagnoses (Wisconsin), 30 measurements of a cell sample."""
import pandas as pd

from tasks import rows

DATASET_NAME = "breast_cancer"
TARGET = "target"
RAW_COLUMNS = {RAW_COLUMNS!r}
CLASS_NAMES = ["malignant", "benign"]


def get(product):
    from sklearn.datasets import load_breast_cancer

    frame = load_breast_cancer(as_frame=True).frame
    frame.columns = [c.replace(" ", "_") for c in frame.columns]
    frame.to_parquet(str(product))


def radius_ratio(raw):
    return (raw["worst_radius"] / raw["mean_radius"]).rename("radius_ratio")


FEATURES = [radius_ratio]


def ratio(product, upstream):
    rows.save_feature(radius_ratio, upstream["get"], product)


def features(product, upstream, test_size, seed, cv_folds):
    rows.save_features_table(upstream["get"], [upstream["ratio"]], product)
    rows.check_cv_folds(pd.read_parquet(str(product))[TARGET], cv_folds, test_size, seed)
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


@pytest.fixture(scope="module")
def adapted(tmp_path_factory):
    project = make_project(tmp_path_factory.mktemp("cancer"))
    (project.path / "tasks" / "data.py").write_text(DATA_MODULE)
    pipeline = (project.path / "pipeline.yaml").read_text()
    assert IRIS_FEATURE_TASKS in pipeline
    (project.path / "pipeline.yaml").write_text(pipeline.replace(IRIS_FEATURE_TASKS, CANCER_FEATURE_TASKS))

    def git(*args):
        return subprocess.run(["git", *args], cwd=project.path, capture_output=True, text=True, check=True).stdout

    project.changed_files = sorted(git("diff", "--name-only").split())
    project.changed_lines = sum(int(a) + int(d) for a, d, _ in (line.split("\t") for line in git("diff", "--numstat").splitlines()))
    print(f"adapting to breast_cancer: {project.changed_lines} lines added or removed in {project.changed_files}")

    # a lean grid for the test; not part of the adaptation
    project.set_grid([
        {"model": "sklearn.ensemble.RandomForestClassifier", "n_estimators": [5, 10]},
        {"model": "sklearn.ensemble.AdaBoostClassifier", "n_estimators": [10]},
    ])
    project.build(*SETTINGS)
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
