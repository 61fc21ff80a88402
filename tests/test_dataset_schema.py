"""The training dataset a fit logs: the schema computed per column is MLflow's own."""
import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_classification

from tracking import fit_runs


def numeric_table(rows=2000):
    X, y = make_classification(n_samples=rows, n_features=6, n_classes=3, n_informative=4, random_state=0)
    table = pd.DataFrame(X, columns=[f"x{i}" for i in range(6)]).assign(target=y)
    return table.assign(
        small=(table["x0"] * 10).astype("int8"),
        unsigned=(table["x1"].abs() * 10).astype("uint16"),
        single=table["x2"].astype("float32"),
        flag=table["x3"] > 0,
        nullable=pd.array(np.where(table["x4"] > 1, None, 1), dtype="Int64"),
    )


def mlflow_schema(table):
    import mlflow

    return mlflow.data.from_pandas(table).schema  # MLflow's inference, every value looked at


@pytest.mark.parametrize("missing_rows", [[], [0], [1999], [5, 700, 1500]])
def test_the_schema_is_mlflows_with_values_missing_anywhere(missing_rows):
    table = numeric_table()
    table.loc[missing_rows, "x1"] = np.nan
    table.loc[missing_rows[1:], "single"] = np.nan
    schema = fit_runs._numeric_schema(table)
    assert schema == mlflow_schema(table)
    assert schema.to_json() == mlflow_schema(table).to_json()
    required = {column.name: column.required for column in schema.inputs}
    assert required["x1"] == (not missing_rows) and required["x0"] and not required["nullable"]


def test_a_table_with_a_text_column_is_left_to_mlflow():
    table = numeric_table().assign(species="setosa")
    assert fit_runs._numeric_schema(table) is None


def test_an_empty_table_has_mlflows_schema():
    table = numeric_table().iloc[:0]
    assert fit_runs._numeric_schema(table) == mlflow_schema(table)


def test_the_logged_dataset_is_mlflows(tmp_path):
    import mlflow

    table = numeric_table()
    table.loc[[3, 9], "x5"] = np.nan
    source = tmp_path / "features.parquet"
    table.to_parquet(source)
    logged = fit_runs.dataset_entity(table, source, "features", "target")
    expected = mlflow.data.from_pandas(table, source=str(source), targets="target", name="features")._to_mlflow_entity()
    assert (logged.digest, logged.schema, logged.profile, logged.source) == (
        expected.digest, expected.schema, expected.profile, expected.source
    )
