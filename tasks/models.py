"""Model functions: expand grid entries, build estimators, split and score.

Nothing here touches MLflow; the fit notebook combines these with `tracking`.
"""
import importlib
import itertools
import re

from sklearn.base import ClassifierMixin
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score
from sklearn.model_selection import train_test_split

METRICS = ("accuracy", "precision_macro", "recall_macro", "f1_macro")


class GridError(ValueError):
    """A grid entry in pipeline.yaml that cannot produce a valid model."""


class ModelSpec(dict):
    """One point of the grid: {"name", "class", "params"}.

    It is a plain dict to Ploomber (so it is injected into the notebook and
    hashed into the task metadata like one); str() gives its readable,
    file-safe name, which pipeline.yaml uses for task and product names.
    """

    def __str__(self):
        return self["name"]


def combinations(model, **hyperparameters):
    """Expand one grid entry into the list of models it describes.

    `model` is the dotted path of a scikit-learn classifier; every other key is
    a hyperparameter with a list of values (a scalar means a single value). The
    entry is validated here, when pipeline.yaml is loaded, so a typo stops the
    build before any fit starts.
    """
    estimator_class = _load_classifier(model)
    accepted = estimator_class._get_param_names()
    unknown = sorted(set(hyperparameters) - set(accepted))
    if unknown:
        raise GridError(
            f"grid entry {model}: unknown hyperparameter(s) {', '.join(unknown)}; "
            f"{estimator_class.__name__} accepts: {', '.join(accepted)}"
        )

    names = list(hyperparameters)
    value_lists = [_as_list(hyperparameters[name]) for name in names]
    specs = []
    for values in itertools.product(*value_lists):
        params = dict(zip(names, values))
        _validate_params(model, estimator_class, params)
        specs.append(
            ModelSpec(name=_spec_name(estimator_class, params), params=params, **{"class": model})
        )
    return specs


def build(spec, seed):
    """A fresh, unfitted estimator for `spec`; random_state defaults to `seed`."""
    estimator_class = _load_classifier(spec["class"])
    params = dict(spec["params"])
    if "random_state" in estimator_class._get_param_names():
        params.setdefault("random_state", seed)
    return estimator_class(**params)


def family(spec):
    """The estimator class name, e.g. RandomForestClassifier."""
    return spec["class"].rsplit(".", 1)[-1]


def split(table, target, test_size, seed):
    """Stratified, seeded train/test split: (X_train, X_test, y_train, y_test)."""
    X = table.drop(columns=[target])
    y = table[target]
    return train_test_split(X, y, test_size=test_size, stratify=y, random_state=seed)


def evaluate(y_true, y_pred):
    """The metrics every fit logs, keyed by the names in METRICS."""
    scores = {
        "accuracy": accuracy_score(y_true, y_pred),
        "precision_macro": precision_score(y_true, y_pred, average="macro", zero_division=0),
        "recall_macro": recall_score(y_true, y_pred, average="macro", zero_division=0),
        "f1_macro": f1_score(y_true, y_pred, average="macro", zero_division=0),
    }
    return {name: float(scores[name]) for name in METRICS}


def _load_classifier(dotted_path):
    module_name, _, class_name = str(dotted_path).rpartition(".")
    try:
        estimator_class = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError, ValueError):
        raise GridError(f"grid entry {dotted_path}: cannot import {dotted_path!r}") from None
    if not (isinstance(estimator_class, type) and issubclass(estimator_class, ClassifierMixin)):
        raise GridError(f"grid entry {dotted_path}: {dotted_path!r} is not a scikit-learn classifier")
    return estimator_class


def _validate_params(model, estimator_class, params):
    try:
        estimator_class(**params)._validate_params()
    except Exception as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
        raise GridError(f"grid entry {model} with {params}: {first_line}") from None


def _as_list(values):
    return list(values) if isinstance(values, (list, tuple)) else [values]


def _spec_name(estimator_class, params):
    parts = [estimator_class.__name__] + [f"{k}={v}" for k, v in params.items()]
    return re.sub(r"[^A-Za-z0-9._=-]+", "_", "-".join(parts))
