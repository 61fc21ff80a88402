"""The baseline: one Python process that fits a grid and logs the same runs as
the pipeline (params, cross-validated and held-out metrics, confusion matrix, dataset, model), then the
compare run with its leaderboard and chart, registers the champion and scores
the held-out rows with it; all without notebooks or HTML reports.

    PYTHONPATH=PROJECT_DIR python benchmarks/loop.py PROJECT_DIR TRACKING_URI

PYTHONPATH makes it read the project's own tasks/ (its data), as its build does.
"""
import sys
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("agg")

import pandas as pd  # noqa: E402

import tracking  # noqa: E402
from tasks import charts, data, grid, models, rows  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from sandbox import Project  # noqa: E402

EXPERIMENT, TEST_SIZE, SEED, CV_FOLDS, METRIC, MODEL_NAME = "iris-grid", 0.3, 42, 5, "accuracy", "iris-classifier"


def features(folder):
    """The features table as the data tasks make it, for whatever dataset tasks/data.py describes."""
    get = folder / "get.parquet"
    data.get(get, resources_=None)
    feature_paths = [folder / f"{feature.__name__}.parquet" for feature in data.FEATURES]
    for feature, path in zip(data.FEATURES, feature_paths):
        rows.save_feature(feature, get, path)
    table = folder / "features.parquet"
    rows.save_features_table(get, feature_paths, table)
    return table


def training_split(folder):
    """(the features table's path, X_train, X_test, y_train, y_test), as every fit splits it."""
    features_path = features(folder)
    return (features_path, *models.split(pd.read_parquet(features_path), data.TARGET, TEST_SIZE, SEED))


def main(project_dir, tracking_uri):
    specs = grid.candidates(Project(Path(project_dir)).grid(), seed=SEED)
    tracking.prepare_store(tracking_uri, EXPERIMENT)
    with tempfile.TemporaryDirectory() as folder:
        features_path, X_train, X_test, y_train, y_test = training_split(Path(folder))
        run_ids = []
        for spec in specs:
            models.validate(spec)
            run = tracking.start_fit_run(True, tracking_uri, EXPERIMENT, spec, Path(folder, "run.json"))
            run.log_dataset(
                X_train.assign(**{data.TARGET: y_train}),
                source=features_path,
                name=f"{data.DATASET_NAME}-features",
                context="training",
                target=data.TARGET,
            )
            fold_scores, estimator = models.cross_validate(models.build(spec, SEED), X_train, y_train, CV_FOLDS, SEED,
                                                           refit=True)
            run.log_metrics(models.cv_summary(fold_scores))
            run.log_params(estimator.get_params())
            run.log_params({"split.test_size": TEST_SIZE, "split.seed": SEED, "cv.folds": CV_FOLDS})
            y_pred = estimator.predict(X_test)
            run.log_metrics(models.evaluate(y_test, y_pred))
            run.log_text(charts.confusion_matrix_svg(y_test, y_pred, data.CLASS_NAMES), tracking.CONFUSION_MATRIX_ARTIFACT)
            run.log_model(estimator, raw_example=X_test[data.RAW_COLUMNS].head(5))
            # closed as the pipeline's hook closes a fit's run (its params and metrics go in one request), without a report
            tracking.finish_fit_run(tracking_uri, f"fit-{spec['name']}", None, succeeded=True)
            run_ids.append(run.run_id)

        board = tracking.leaderboard(tracking_uri, run_ids, METRIC)
        tracking.record_comparison(tracking_uri, EXPERIMENT, board, METRIC, charts.decided_chart(board, METRIC), MODEL_NAME)
        champion, _ = tracking.load_champion(tracking_uri, MODEL_NAME)
        batch = X_test[data.RAW_COLUMNS]
        batch.assign(prediction=champion.predict(batch)).to_csv(Path(folder, "predictions.csv"), index=False)
    print(f"{len(run_ids)} runs logged")


if __name__ == "__main__":
    main(*sys.argv[1:3])
