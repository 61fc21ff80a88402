"""Cross-validated scores: the folds, their summary, and how compare ranks by them."""
import pandas as pd
import pytest
from sklearn.datasets import load_iris

from tasks import models, search


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True, as_frame=True)
    return X, y


def test_fold_scores_are_one_row_per_fold_and_repeatable(iris):
    X, y = iris
    estimator = models.build(search.combinations("sklearn.ensemble.RandomForestClassifier", n_estimators=5)[0], seed=0)
    scores = models.cross_validate(estimator, X, y, folds=4, seed=7)
    assert list(scores.columns) == list(models.METRICS)
    assert list(scores.index) == [1, 2, 3, 4]
    assert ((scores >= 0) & (scores <= 1)).all().all()
    pd.testing.assert_frame_equal(scores, models.cross_validate(estimator, X, y, folds=4, seed=7))
    assert not hasattr(estimator, "classes_")  # the estimator given is left unfitted


def test_the_summary_names_mean_and_std_of_each_metric():
    folds = pd.DataFrame({m: [0.8, 1.0] for m in models.METRICS})
    summary = models.cv_summary(folds)
    assert set(summary) == set(models.CV_METRICS) == {f"cv_{m}_{s}" for m in models.METRICS for s in ("mean", "std")}
    assert summary["cv_accuracy_mean"] == pytest.approx(0.9)
    assert summary["cv_accuracy_std"] == pytest.approx(0.1)
