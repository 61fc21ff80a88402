"""From raw rows to a model's input, for whatever dataset tasks/data.py describes.

Shipped with every logged model (with tasks/data.py): the model computes its
derived features with these very functions.
"""
import csv
from pathlib import Path

import pandas as pd


def model_input(raw):
    """The columns a model takes, in the features table's order: the raw
    columns, then each derived feature of data.FEATURES."""
    from tasks import data

    if problem := missing_columns(raw.columns):
        raise ValueError(problem)
    table = raw[data.RAW_COLUMNS]
    return table.join([feature(table) for feature in data.FEATURES]) if data.FEATURES else table


def save_feature(feature, raw_path, product):
    """A feature task: `feature` of the raw table, saved as a one-column table."""
    feature(pd.read_parquet(str(raw_path))).to_frame().to_parquet(str(product))


def save_features_table(raw_path, feature_paths, product):
    """The features task: the raw table joined with the feature tasks' columns, target last.

    The table must be what `model_input` computes from the raw columns, so
    that the models trained on it take raw rows: data.FEATURES and the feature
    tasks of pipeline.yaml must name the same features, in the same order.
    """
    from tasks import data

    raw = pd.read_parquet(str(raw_path))
    if data.TARGET not in raw.columns:
        raise ValueError(f"get's table has no target column {data.TARGET!r}: {', '.join(raw.columns)}")
    table = raw.drop(columns=[data.TARGET]).join([pd.read_parquet(str(p)) for p in feature_paths])
    expected = model_input(raw)
    if list(table.columns) != list(expected.columns):
        raise ValueError(
            f"the feature tasks give columns {', '.join(table.columns)} but the model computes "
            f"{', '.join(expected.columns)} from raw rows: list the features in data.FEATURES in the "
            "feature tasks' order, and the raw columns (get's output minus the target) in data.RAW_COLUMNS"
        )
    pd.testing.assert_frame_equal(table, expected, obj="features table vs model_input(raw)")
    table.assign(**{data.TARGET: raw[data.TARGET]}).to_parquet(str(product))


def check_cv_folds(target, cv_folds, test_size, seed):
    """Raise ValueError, one line, when cv_folds cannot split the training split of `target`.

    Stratified k-fold needs at least k rows of every class in the training
    split. The features task checks it: it runs before any fit, and it is the
    first task that has the data.
    """
    from tasks import models

    accepts = "an integer of at least 2"
    if isinstance(cv_folds, bool) or not isinstance(cv_folds, int) or cv_folds < 2:
        raise ValueError(f"cv_folds {cv_folds!r}: expected {accepts}")
    counts = models.split(target.to_frame(), target.name, test_size, seed)[2].value_counts()
    if cv_folds > counts.min():
        raise ValueError(
            f"cv_folds {cv_folds}: expected {accepts} and at most {counts.min()}, the rows of the smallest "
            f"class ({class_names([counts.idxmin()])[0]}) in the training split"
        )


def check_batch_file(path):
    """One line naming what is wrong with a CSV file of rows to score, or None."""
    if not Path(path).is_file():
        return f"score_input {path!r}: no such file"
    with open(path, newline="") as batch:
        header = next(csv.reader(batch), [])
    if problem := missing_columns(header):
        return f"score_input {path!r}: {problem}"
    return None


def missing_columns(columns):
    """One line naming the raw columns missing from `columns`, or None."""
    from tasks import data

    missing = [c for c in data.RAW_COLUMNS if c not in columns]
    if missing:
        return f"missing column(s) {', '.join(missing)}; expected {', '.join(data.RAW_COLUMNS)}"
    return None


def class_names(codes):
    """The class name of each target code, as data.CLASS_NAMES gives them."""
    from tasks import data

    return [data.CLASS_NAMES[int(code)] for code in codes]
