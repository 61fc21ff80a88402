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
# # Fit one model of the grid
#
# Trains the model given by `model` on the features table, scores it on a
# held-out stratified split and, when `track` is on, logs the run to MLflow:
# parameters, metrics, confusion matrix, training data and the model itself.
# Ploomber runs this notebook once per grid entry; this report is attached to
# the run as HTML when the notebook finishes.

# %% tags=["parameters"]
upstream = ["features"]
product = None
model = {
    "name": "RandomForestClassifier-n_estimators=10",
    "class": "sklearn.ensemble.RandomForestClassifier",
    "params": {"n_estimators": 10},
}
track = False
mlflow_tracking_uri = None
experiment_name = "iris-grid"
test_size = 0.3
seed = 42

# %%
import pandas as pd
from sklearn_evaluation import plot

import tracking
from tasks import data, models

# %%
run = tracking.start_fit_run(track, mlflow_tracking_uri, experiment_name, model, product["run"])
print(f"{model['name']}: MLflow run {run.run_id or '(tracking off)'}")

# %% [markdown]
# ## Data

# %%
table = pd.read_parquet(upstream["features"])
X_train, X_test, y_train, y_test = models.split(table, data.TARGET, test_size, seed)
print(f"{len(X_train)} training rows, {len(X_test)} held-out rows, seed {seed}")
run.log_dataset(
    X_train.assign(**{data.TARGET: y_train}),
    source=upstream["features"],
    name="iris-features",
    context="training",
    target=data.TARGET,
)

# %% [markdown]
# ## Model

# %%
estimator = models.build(model, seed)
estimator.fit(X_train, y_train)
run.log_params(estimator.get_params())
run.log_params({"split.test_size": test_size, "split.seed": seed})
estimator

# %% [markdown]
# ## Scores on the held-out split

# %%
y_pred = estimator.predict(X_test)
metrics = models.evaluate(y_test, y_pred)
run.log_metrics(metrics)
pd.Series(metrics, name=model["name"]).to_frame()

# %%
confusion = plot.ConfusionMatrix.from_raw_data(y_test, y_pred)
run.log_figure(confusion.figure_, tracking.CONFUSION_MATRIX_ARTIFACT)  # with tracking on, shows the logged PNG

# %%
run.log_model(estimator, input_example=X_test.head(5))
