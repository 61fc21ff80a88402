"""Data tasks: load iris and build the features table. Pure functions of files."""
import pandas as pd

TARGET = "target"


def get(product):
    """The raw iris table, shipped with scikit-learn (no download)."""
    # imported here: every build imports this module, even when up to date
    from sklearn.datasets import load_iris

    frame = load_iris(as_frame=True).frame
    frame.columns = [c.replace(" (cm)", "").replace(" ", "_") for c in frame.columns]
    frame.to_parquet(str(product))


def sepal(product, upstream):
    raw = pd.read_parquet(str(upstream["get"]))
    area = (raw["sepal_length"] * raw["sepal_width"]).rename("sepal_area")
    area.to_frame().to_parquet(str(product))


def petal(product, upstream):
    raw = pd.read_parquet(str(upstream["get"]))
    area = (raw["petal_length"] * raw["petal_width"]).rename("petal_area")
    area.to_frame().to_parquet(str(product))


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
