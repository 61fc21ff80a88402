"""The dataset: what the project knows about iris, all of it here.

To train the grid on your own table, change this module (the constants, `load`
and the derived features) and the feature tasks in pipeline.yaml; everything
downstream (fit, compare, score, the logged model) reads these names.
"""
from tasks import rows

DATASET_NAME = "iris"
TARGET = "target"
# The columns of get's output minus the target: what a row to score must have
RAW_COLUMNS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
# The name of each class, indexed by its code in the target column
CLASS_NAMES = ["setosa", "versicolor", "virginica"]


def get(product, resources_):
    """The raw table, from load(). `resources_` lists the files that decide get is outdated (pipeline.yaml)."""
    load().to_parquet(str(product))


def load():
    """The raw iris table, shipped with scikit-learn (no download)."""
    # imported here: every build imports this module, even when up to date
    from sklearn.datasets import load_iris

    frame = load_iris(as_frame=True).frame
    frame.columns = [c.replace(" (cm)", "").replace(" ", "_") for c in frame.columns]
    return frame


# Derived features: functions of raw rows. The feature tasks below save them;
# every logged model ships this module and computes them itself from raw rows.
def sepal_area(raw):
    return (raw["sepal_length"] * raw["sepal_width"]).rename("sepal_area")


def petal_area(raw):
    return (raw["petal_length"] * raw["petal_width"]).rename("petal_area")


FEATURES = [sepal_area, petal_area]


def sepal(product, upstream):
    rows.save_feature(sepal_area, upstream["get"], product)


def petal(product, upstream):
    rows.save_feature(petal_area, upstream["get"], product)


def features(product, upstream):
    """The raw table joined with the feature tasks' products."""
    rows.save_features_table(upstream["get"], [upstream["sepal"], upstream["petal"]], product)
