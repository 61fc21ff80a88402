"""Data tasks: load iris and build the features table. Pure functions of files."""
import csv
from pathlib import Path

import pandas as pd

TARGET = "target"
# What a flower is measured by, in cm: the columns a batch to score must have
MEASUREMENTS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


def get(product):
    load().to_parquet(str(product))


def load():
    """The raw iris table, shipped with scikit-learn (no download)."""
    # imported here: every build imports this module, even when up to date
    from sklearn.datasets import load_iris

    frame = load_iris(as_frame=True).frame
    frame.columns = [c.replace(" (cm)", "").replace(" ", "_") for c in frame.columns]
    return frame


def sepal(product, upstream):
    raw = pd.read_parquet(str(upstream["get"]))
    sepal_area(raw).to_frame().to_parquet(str(product))


def petal(product, upstream):
    raw = pd.read_parquet(str(upstream["get"]))
    petal_area(raw).to_frame().to_parquet(str(product))


def features(product, upstream):
    raw = pd.read_parquet(str(upstream["get"]))
    sepal_area = pd.read_parquet(str(upstream["sepal"]))
    petal_area = pd.read_parquet(str(upstream["petal"]))
    table = raw.join(sepal_area).join(petal_area)
    if TARGET not in table.columns:
        raise ValueError(f"features table has no {TARGET!r} column: {', '.join(table.columns)}")
    # the target goes last so the table reads features-then-label
    table = table[[c for c in table.columns if c != TARGET] + [TARGET]]
    table.to_parquet(str(product))


def sepal_area(measurements):
    return (measurements["sepal_length"] * measurements["sepal_width"]).rename("sepal_area")


def petal_area(measurements):
    return (measurements["petal_length"] * measurements["petal_width"]).rename("petal_area")


def model_input(measurements):
    """The columns a model takes, in the features table's order, from raw measurements."""
    if problem := _missing_measurements(measurements.columns):
        raise ValueError(problem)
    table = measurements[MEASUREMENTS]
    return table.join(sepal_area(table)).join(petal_area(table))


def check_batch_file(path):
    """One line naming what is wrong with a CSV file of flowers to score, or None."""
    if not Path(path).is_file():
        return f"score_input {path!r}: no such file"
    with open(path, newline="") as batch:
        header = next(csv.reader(batch), [])
    if problem := _missing_measurements(header):
        return f"score_input {path!r}: {problem}"
    return None


def _missing_measurements(columns):
    missing = [c for c in MEASUREMENTS if c not in columns]
    if missing:
        return f"missing column(s) {', '.join(missing)}; expected {', '.join(MEASUREMENTS)}"
    return None
