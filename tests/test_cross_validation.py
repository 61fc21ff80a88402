"""Cross-validated scores: the folds, their summary, and how compare ranks by them."""
import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.datasets import load_iris
from sklearn.model_selection import StratifiedKFold

from tasks import models, search


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True, as_frame=True)
    return X, y


def test_fold_scores_are_one_row_per_fold_and_repeatable(iris):
    X, y = iris
    estimator = models.build(search.combinations("sklearn.ensemble.RandomForestClassifier", n_estimators=5)[0], seed=0)
    scores, first_fold_model = models.cross_validate(estimator, X, y, folds=4, seed=7)
    assert list(scores.columns) == list(models.METRICS)
    assert list(scores.index) == [1, 2, 3, 4]
    assert ((scores >= 0) & (scores <= 1)).all().all()
    again, refitted = models.cross_validate(estimator, X, y, folds=4, seed=7, refit=True)
    pd.testing.assert_frame_equal(scores, again)
    assert not hasattr(estimator, "classes_")  # the estimator given is left unfitted
    # the refit is the estimator trained on every row; without refit, the first fold's model
    assert refitted.predict(X).tolist() == clone(estimator).fit(X, y).predict(X).tolist()
    train, _ = next(StratifiedKFold(n_splits=4, shuffle=True, random_state=7).split(X, y))
    first_fold = clone(estimator).fit(X.iloc[train], y.iloc[train])
    assert first_fold_model.predict(X).tolist() == first_fold.predict(X).tolist()


def test_the_summary_names_mean_and_std_of_each_metric():
    folds = pd.DataFrame({m: [0.8, 1.0] for m in models.METRICS})
    summary = models.cv_summary(folds)
    assert set(summary) == set(models.CV_METRICS) == {f"cv_{m}_{s}" for m in models.METRICS for s in ("mean", "std")}
    assert summary["cv_accuracy_mean"] == pytest.approx(0.9)
    assert summary["cv_accuracy_std"] == pytest.approx(0.1)


def test_folds_lent_to_idle_cores_score_as_folds_in_turn(iris):
    # a job's own process per idle core, as a build's worker does when the other worker has no task
    from multiprocessing import get_context

    from runner import folds

    X, y = iris
    estimator = models.build(search.combinations("sklearn.ensemble.RandomForestClassifier", n_estimators=5)[0], seed=0)
    in_turn = {refit: models.cross_validate(estimator, X, y, folds=5, seed=7, refit=refit) for refit in (False, True)}
    folds.share(get_context("fork"))
    folds.set_idle_workers(1)
    folds.lend_idle_cores()
    forked = []
    real_fork = folds._fork
    folds._fork = lambda job, i: forked.append(i) or real_fork(job, i)
    try:
        lent = {refit: models.cross_validate(estimator, X, y, folds=5, seed=7, refit=refit) for refit in (False, True)}
        # a fold that fails in its own process fails again in the fit's, with its own error
        failing = models.build(search.combinations("sklearn.ensemble.RandomForestClassifier", bootstrap=False,
                                                   oob_score=True)[0], seed=0)
        with pytest.raises(ValueError, match="Out of bag estimation only available if bootstrap=True"):
            models.cross_validate(failing, X, y, folds=5, seed=7)
    finally:
        folds._fork = real_fork
        models.run_folds = models.one_after_another
        folds.set_idle_workers(0)
    assert forked  # some jobs did run in their own process
    for refit in (False, True):
        pd.testing.assert_frame_equal(lent[refit][0], in_turn[refit][0])
        assert lent[refit][1].predict(X).tolist() == in_turn[refit][1].predict(X).tolist()
    assert list(folds._cores) == [0, 0]  # every core lent is back


@pytest.mark.parametrize("classes, rows", [(2, 7), (3, 45), (3, 2800), (5, 300), (10, 1000)])
def test_the_scores_are_scikit_learns_to_the_last_bit(classes, rows):
    from sklearn.metrics import accuracy_score, precision_recall_fscore_support

    rng = np.random.default_rng(rows)
    for _ in range(20):
        y_true = pd.Series(rng.integers(0, classes, rows))
        # mostly right, and some classes never predicted or never true: the zero divisions
        y_pred = np.where(rng.random(rows) < 0.7, y_true, rng.integers(0, classes + 1, rows))
        y_pred[y_pred == classes - 1] = 0
        precision, recall, f1, _ = precision_recall_fscore_support(y_true, y_pred, average="macro", zero_division=0)
        expected = {"accuracy": accuracy_score(y_true, y_pred), "precision_macro": precision,
                    "recall_macro": recall, "f1_macro": f1}
        assert models.evaluate(y_true, y_pred) == {name: float(expected[name]) for name in models.METRICS}
