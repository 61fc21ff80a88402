"""Model functions: validate grid specs, build estimators, split and score.

Nothing here touches MLflow; the fit notebook combines these with `tracking`.
"""
import importlib

import numpy as np
import pandas as pd
from sklearn.base import ClassifierMixin, clone
from sklearn.model_selection import StratifiedKFold, train_test_split
from sklearn.utils import resample

from tasks import halving
from tasks.metrics import CV_METRICS, METRICS  # noqa: F401  (re-exported: the notebooks and tests read models.METRICS)


def one_after_another(job, count):
    """[job(0), ..., job(count - 1)], computed here in turn."""
    return [job(i) for i in range(count)]


# How cross_validate runs its jobs (its folds, and the refit): in turn, unless a
# build's worker hands some to a core no other task uses (runner/folds.py sets
# this in its workers).
run_folds = one_after_another


class GridError(ValueError):
    """A grid entry in pipeline.yaml that cannot produce a valid model."""


def validate(spec):
    """Check a model spec before it is fitted: the class imports and is a
    classifier, it accepts every hyperparameter, and each value passes the
    estimator's own validation. Raises GridError with one line naming the entry.
    """
    estimator_class = _load_classifier(spec["class"])
    accepted = estimator_class._get_param_names()
    if (resource := halving.resource_parameter(spec)) and resource not in accepted:
        raise GridError(
            f"halving_resource {resource!r}: grid entry {spec['class']} has no such parameter; "
            f"{estimator_class.__name__} accepts: {', '.join(accepted)}"
        )
    unknown = sorted(set(spec["params"]) - set(accepted))
    if unknown:
        raise GridError(
            f"grid entry {spec['class']}: unknown hyperparameter(s) {', '.join(unknown)}; "
            f"{estimator_class.__name__} accepts: {', '.join(accepted)}"
        )
    try:
        estimator_class(**spec["params"])._validate_params()
    except Exception as error:
        message = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
        raise GridError(f"grid entry {spec['class']} with {spec['params']}: {message}") from None


def build(spec, seed):
    """A fresh, unfitted estimator for `spec`; random_state defaults to `seed`."""
    estimator_class = _load_classifier(spec["class"])
    params = dict(spec["params"])
    if "random_state" in estimator_class._get_param_names():
        params.setdefault("random_state", seed)
    return estimator_class(**params)


def estimated_cost(spec):
    """How long a fit of `spec` takes, relative to the other fits of its grid: its number
    of estimators (its class's default when the spec leaves it), else 1. Enough to start
    the longest fits first, so that no worker waits at the end for the largest forest."""
    try:
        estimator_class = _load_classifier(spec["class"])
        n_estimators = spec["params"].get("n_estimators", estimator_class().get_params().get("n_estimators"))
    except Exception:  # an unusual spec costs what a plain one does; validate() names its error
        return 1
    return n_estimators if isinstance(n_estimators, int) and n_estimators > 0 else 1


def split(table, target, test_size, seed):
    """Stratified, seeded train/test split: (X_train, X_test, y_train, y_test)."""
    X = table.drop(columns=[target])
    y = table[target]
    return train_test_split(X, y, test_size=test_size, stratify=y, random_state=seed)


def evaluate(y_true, y_pred):
    """The metrics every fit logs, keyed by the names in METRICS: scikit-learn's
    accuracy_score and precision_recall_fscore_support(average="macro",
    zero_division=0), the same floats (tests/test_cross_validation.py), from
    the counts of each class.

    scikit-learn's checks of its inputs (their types, their labels, through
    narwhals) took 5 to 7 ms of each call, which every fit makes six times.
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    labels, codes = np.unique(np.concatenate([y_true, y_pred]), return_inverse=True)
    true, predicted = codes[:len(y_true)], codes[len(y_true):]
    right = true == predicted
    tp = np.bincount(true[right], minlength=len(labels))
    true_sum, pred_sum = np.bincount(true, minlength=len(labels)), np.bincount(predicted, minlength=len(labels))
    scores = {
        "accuracy": right.mean(),
        "precision_macro": _zero_if_undefined(tp, pred_sum).mean(),
        "recall_macro": _zero_if_undefined(tp, true_sum).mean(),
        "f1_macro": _zero_if_undefined(2.0 * tp.astype(np.float64), true_sum.astype(np.float64) + pred_sum).mean(),
    }
    return {name: float(scores[name]) for name in METRICS}


def _zero_if_undefined(numerator, denominator):
    """numerator / denominator, 0 where the denominator is 0 (scikit-learn's zero_division=0)."""
    undefined = denominator == 0
    ratio = numerator / np.where(undefined, 1, denominator)
    ratio[undefined] = 0.0
    return ratio


def cross_validate(estimator, X, y, folds, seed, rows=None, refit=False):
    """(scores, model): the scores of `estimator` on each of `folds` stratified
    folds of (X, y), and a fitted copy of it.

    The folds are shuffled by `seed` and depend on nothing else, so every fit
    of a build is scored on the same folds and the scores are paired. The
    scores have one row per fold (index `fold`, from 1), one column per metric
    in METRICS.

    With `rows` (a halving rung's resource) below len(y), each fold trains on a
    stratified subset of its training part, the fraction rows / len(y), and is
    scored on its whole test part: scikit-learn's _SubsampleMetaSplitter.

    The model is, with `refit`, `estimator` trained on all of (X, y), a job
    beside the folds' (run_folds may give any of them to an idle core); else
    the first fold's model.
    """
    splits = list(StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed).split(X, y))
    kept = len(splits) if refit else 0  # the job whose model is returned

    def job(i):
        if i == len(splits):
            return None, clone(estimator).fit(X, y)
        train, test = splits[i]
        if rows is not None and rows < len(y):
            train = resample(train, replace=False, n_samples=int(rows / len(y) * len(train)), stratify=y.iloc[train],
                             random_state=seed)
        model = clone(estimator).fit(X.iloc[train], y.iloc[train])
        return evaluate(y.iloc[test], model.predict(X.iloc[test])), model if i == kept else None

    outcomes = run_folds(job, len(splits) + (1 if refit else 0))
    scores = [scores for scores, _ in outcomes[:len(splits)]]
    table = pd.DataFrame(scores, columns=list(METRICS), index=pd.RangeIndex(1, len(scores) + 1, name="fold"))
    return table, outcomes[kept][1]


def cv_summary(fold_scores):
    """{cv_M_mean, cv_M_std} for each metric M of `fold_scores` (std over the folds, ddof=0 like numpy)."""
    summary = {}
    for metric in METRICS:
        summary[f"cv_{metric}_mean"] = float(fold_scores[metric].mean())
        summary[f"cv_{metric}_std"] = float(fold_scores[metric].std(ddof=0))
    return summary


def rescore(spec, table, target, test_size, seed, folds):
    """Score a configuration as a fit of this split would be: {cv_M_mean, cv_M_std} on
    the training split's folds and the held-out M (a champion re-evaluated on new folds)."""
    X_train, X_test, y_train, y_test = split(table, target, test_size, seed)
    fold_scores, model = cross_validate(build(spec, seed), X_train, y_train, folds, seed, refit=True)
    return {**cv_summary(fold_scores), **evaluate(y_test, model.predict(X_test))}


def _load_classifier(dotted_path):
    module_name, _, class_name = str(dotted_path).rpartition(".")
    try:
        estimator_class = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError, ValueError):
        raise GridError(f"grid entry {dotted_path}: cannot import {dotted_path!r}") from None
    if not (isinstance(estimator_class, type) and issubclass(estimator_class, ClassifierMixin)):
        raise GridError(f"grid entry {dotted_path}: {dotted_path!r} is not a scikit-learn classifier")
    return estimator_class
