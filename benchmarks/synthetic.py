"""A copy of the project trained on a synthetic table of any size, made the way the
README's "Use your own data" says: only tasks/data.py and the feature tasks of
pipeline.yaml change (tests/test_own_data.py does the same with breast_cancer)."""
import yaml

from sandbox import make_project

DATA_MODULE = '''"""The dataset: a synthetic table of {rows:,} rows and {columns} columns (make_classification)."""
from tasks import rows

DATASET_NAME = "synthetic"
TARGET = "target"
RAW_COLUMNS = {raw_columns!r}
CLASS_NAMES = ["a", "b", "c"]


def get(product, resources_):
    load().to_parquet(str(product))


def load():
    import pandas as pd
    from sklearn.datasets import make_classification

    X, y = make_classification(
        n_samples={rows}, n_features={columns}, n_informative={informative}, n_classes=3, random_state=0
    )
    return pd.DataFrame(X, columns=RAW_COLUMNS).assign(**{{TARGET: y}})


def x0_times_x1(raw):
    return (raw["x0"] * raw["x1"]).rename("x0_times_x1")


FEATURES = [x0_times_x1]


def crossed(product, upstream):
    rows.save_feature(x0_times_x1, upstream["get"], product)


def features(product, upstream):
    rows.save_features_table(upstream["get"], [upstream["crossed"]], product)
'''
IRIS_FEATURE_TASKS = ("tasks.data.sepal", "tasks.data.petal")
FEATURE_TASK = {"source": "tasks.data.crossed", "product": "products/crossed.parquet"}


def make_synthetic_project(path, rows, columns, code):
    """A copy of the project whose code is `code`'s in `path`, its data a synthetic table of `rows` x `columns`."""
    project = make_project(path, code)
    raw_columns = [f"x{i}" for i in range(columns)]
    informative = max(2, min(10, columns // 2))
    (path / "tasks" / "data.py").write_text(
        DATA_MODULE.format(rows=rows, columns=columns, raw_columns=raw_columns, informative=informative)
    )
    spec = yaml.safe_load((path / "pipeline.yaml").read_text())
    tasks = [task for task in spec["tasks"] if task.get("source") not in IRIS_FEATURE_TASKS]
    position = next(i for i, task in enumerate(tasks) if task.get("source") == "tasks.data.get") + 1
    spec["tasks"] = tasks[:position] + [FEATURE_TASK] + tasks[position:]
    (path / "pipeline.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return project
