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
# Scores the model given by `model` by stratified `cv_folds`-fold
# cross-validation on the training split, then trains it on the whole training
# split and scores it on the held-out split. When `track` is on, logs the run
# to MLflow: parameters, both kinds of scores, confusion matrix, training data
# and the model itself.
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
cv_folds = 5

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
    name=f"{data.DATASET_NAME}-features",
    context="training",
    target=data.TARGET,
)

# %% [markdown]
# ## Cross-validated scores on the training split
#
# The folds are the same for every model of the grid (shuffled by `seed`), so
# the scores of two models are paired. compare ranks the models by their mean.

# %%
estimator = models.build(model, seed)
fold_scores = models.cross_validate(estimator, X_train, y_train, cv_folds, seed)
cv_scores = models.cv_summary(fold_scores)
run.log_metrics(cv_scores)
summary = pd.DataFrame(
    {m: [cv_scores[f"cv_{m}_mean"], cv_scores[f"cv_{m}_std"]] for m in models.METRICS}, index=["mean", "std"]
)
pd.concat([fold_scores, summary]).round(4)

# %% [markdown]
# ## Model, trained on the whole training split

# %%
estimator.fit(X_train, y_train)
run.log_params(estimator.get_params())
run.log_params({"split.test_size": test_size, "split.seed": seed, "cv.folds": cv_folds})
estimator

# %% [markdown]
# ## Scores on the held-out split

# %%
y_pred = estimator.predict(X_test)
metrics = models.evaluate(y_test, y_pred)
run.log_metrics(metrics)
pd.Series(metrics, name=model["name"]).to_frame()

# %%
confusion = plot.ConfusionMatrix.from_raw_data(y_test, y_pred, target_names=data.CLASS_NAMES)
run.log_figure(confusion.figure_, tracking.CONFUSION_MATRIX_ARTIFACT)  # with tracking on, shows the logged PNG

# %% [markdown]
# ## The logged model
#
# It takes the raw columns and computes the derived features itself, with the
# functions of `tasks/data.py` that the feature tasks use.

# %%
run.log_model(estimator, raw_example=X_test[data.RAW_COLUMNS].head(5))
