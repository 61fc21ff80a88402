# ---
# jupyter:
#   jupytext:
#     notebook_metadata_filter: ploomber
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
#   ploomber: {}
# ---

# %% [markdown]
# # Score a batch with the champion
#
# Loads the model that the registry's alias `champion` points at and predicts
# a batch of raw rows: the held-out rows, or the rows of the CSV file
# `score_input`, which needs the raw columns of `tasks/data.py` (for iris
# `sepal_length`, `sepal_width`, `petal_length`, `petal_width`, in cm). The
# model computes the derived features itself. The predictions are saved with
# the model version that made them.

# %% tags=["parameters"]
upstream = ["compare", "features"]
product = None
track = False
mlflow_tracking_uri = None
registered_model_name = "iris-classifier"
score_input = ""
test_size = 0.3
seed = 42

# %%
import json

import pandas as pd

import tracking
from tasks import data, models, rows

# %% [markdown]
# ## The batch

# %%
if score_input:
    batch = pd.read_csv(score_input)
    batch_source = score_input
else:
    table = pd.read_parquet(upstream["features"])
    batch = models.split(table, data.TARGET, test_size, seed)[1][data.RAW_COLUMNS]
    batch_source = f"held-out rows of {upstream['features']} (test_size={test_size}, seed={seed})"
print(f"{len(batch)} rows from {batch_source}")

# %% [markdown]
# ## Predictions

# %%
if track:
    model, version = tracking.load_champion(mlflow_tracking_uri, registered_model_name)
    predicted = model.predict(batch)
    predictions = batch.assign(prediction=predicted, predicted_class=rows.class_names(predicted))
    used = {"model": registered_model_name, "alias": tracking.CHAMPION_ALIAS,
            "version": str(version.version), "run_id": version.run_id}
    print(f"Scored with {registered_model_name}@{tracking.CHAMPION_ALIAS}: version {version.version}, run {version.run_id}")
else:
    print("Tracking is off: there is no model registry to load the champion from, so nothing is scored. "
          "Build with --env--track true.")
    predictions = batch.head(0).assign(prediction=pd.Series(dtype="int64"), predicted_class=pd.Series(dtype="str"))
    used = {"model": None, "alias": None, "version": None, "run_id": None}

predictions.to_csv(product["predictions"], index=False)
with open(product["model"], "w") as record:
    json.dump({**used, "input": batch_source, "rows": len(predictions)}, record, indent=2)
predictions.head(10)
