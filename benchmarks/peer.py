"""The peer a user compares the project with: GridSearchCV with MLflow's autolog,
over the same grid, on the same training split and the same folds.

    PYTHONPATH=PROJECT_DIR python benchmarks/peer.py PROJECT_DIR TRACKING_URI [N_JOBS]

One GridSearchCV per grid entry (one estimator class each), `n_jobs` as many
as the build's workers (default: the cores), scored by the four metrics the
fits log and refitted on the best accuracy, under
`mlflow.sklearn.autolog(max_tuning_runs=None, log_models=True)`: a parent run
per search, a child run per candidate, the best model logged. Prints the best
cross-validated accuracy of each search.
"""
import os
import sys
import tempfile
from pathlib import Path

import mlflow
from sklearn.model_selection import GridSearchCV, StratifiedKFold

from loop import CV_FOLDS, EXPERIMENT, SEED, training_split
from tasks import models

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from sandbox import Project  # noqa: E402

SCORING = {"accuracy": "accuracy", "precision_macro": "precision_macro", "recall_macro": "recall_macro",
           "f1_macro": "f1_macro"}


def searches(project_dir):
    """(estimator, param_grid) of each grid entry: the estimator as a fit builds it, unset
    hyperparameters at their defaults and random_state the build's seed."""
    for entry in Project(Path(project_dir)).grid():
        param_grid = {name: values if isinstance(values, list) else [values] for name, values in entry.items() if name != "model"}
        yield models.build({"class": entry["model"], "params": {}}, SEED), param_grid


def main(project_dir, tracking_uri, n_jobs=None):
    n_jobs = int(n_jobs or os.cpu_count())
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_experiment(EXPERIMENT)
    mlflow.sklearn.autolog(max_tuning_runs=None, log_models=True, silent=True)
    folds = StratifiedKFold(n_splits=CV_FOLDS, shuffle=True, random_state=SEED)
    with tempfile.TemporaryDirectory() as folder:
        _, X_train, _, y_train, _ = training_split(Path(folder))
        for estimator, param_grid in searches(project_dir):
            search = GridSearchCV(estimator, param_grid, scoring=SCORING, refit="accuracy", cv=folds, n_jobs=n_jobs)
            with mlflow.start_run(run_name=f"GridSearchCV-{type(estimator).__name__}"):
                search.fit(X_train, y_train)
            print(f"{type(estimator).__name__}: best cv accuracy {search.best_score_:.6f} {search.best_params_}")
    # joblib's workers are reaped before this process exits, so that their CPU time counts as its children's
    from joblib.externals.loky import get_reusable_executor

    get_reusable_executor().shutdown(wait=True)


if __name__ == "__main__":
    main(*sys.argv[1:4])
