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
# # Fit one model of the search
#
# Scores the model given by `model` by stratified `cv_folds`-fold
# cross-validation on the training split, then trains it on the whole training
# split and scores it on the held-out split. When `track` is on, logs the run
# to MLflow: parameters, both kinds of scores, confusion matrix, training data
# and the model itself.
# Ploomber runs this notebook once per candidate; this report is attached to
# the run as HTML when the notebook finishes.
#
# In successive halving (`--env--halving true`), a fit is one candidate on one
# rung: it trains on that rung's resource (a subset of the training rows, or
# an estimator parameter's value), and only the last rung's fits, on the full
# resource, log a model. A place on a later rung first reads which candidate
# it trains: the rung before's survivors, in compare's order.

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
from IPython.display import SVG

import tracking
from tasks import charts, data, halving, models, search

# %%
candidate = halving.trained_by(model, tracking.fit_records(upstream))
run = tracking.start_fit_run(track, mlflow_tracking_uri, experiment_name, candidate, product["run"])
print(f"{candidate['name']}: MLflow run {run.run_id or '(tracking off)'}")

# %% [markdown]
# ## Data

# %%
table = pd.read_parquet(upstream["features"])
X_train, X_test, y_train, y_test = models.split(table, data.TARGET, test_size, seed)
print(f"{len(X_train)} training rows, {len(X_test)} held-out rows, seed {seed}")
resource = halving.resource_value(candidate, len(X_train), y_train.nunique(), cv_folds)
rows = halving.training_rows(candidate, resource)
if resource is not None:
    run.set_tags({search.RESOURCE_TAG: str(resource)})
    print(f"rung {halving.rung_of(candidate)}: {halving.resource_text(candidate, resource)}")
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
# The folds are the same for every model of the search (shuffled by `seed`), so
# the scores of two models are paired. compare ranks the models by their mean.

# %%
fold_scores, estimator = models.cross_validate(
    models.build(candidate, seed), X_train, y_train, cv_folds, seed, rows, refit=halving.is_final(candidate)
)
cv_scores = models.cv_summary(fold_scores)
run.log_metrics(cv_scores)
tracking.record_scores(product["run"], cv_scores, resource)
summary = pd.DataFrame(
    {m: [cv_scores[f"cv_{m}_mean"], cv_scores[f"cv_{m}_std"]] for m in models.METRICS}, index=["mean", "std"]
)
pd.concat([fold_scores, summary]).round(4)

# %% [markdown]
# ## Model, trained on the whole training split
#
# Trained beside the folds above. On an earlier rung of successive halving,
# the first fold's model stands in: it was trained on the rung's resource too,
# and fitting another would cost a sixth of the rung's time for a model no one
# serves.

# %%
run.log_params(estimator.get_params())
run.log_params({"split.test_size": test_size, "split.seed": seed, "cv.folds": cv_folds})
estimator

# %% [markdown]
# ## Scores on the held-out split

# %%
y_pred = estimator.predict(X_test)
metrics = models.evaluate(y_test, y_pred)
run.log_metrics(metrics)
pd.Series(metrics, name=candidate["name"]).to_frame()

# %%
confusion = charts.confusion_matrix_svg(y_test, y_pred, data.CLASS_NAMES)
run.log_text(confusion, tracking.CONFUSION_MATRIX_ARTIFACT)
SVG(confusion)

# %% [markdown]
# ## The logged model
#
# It takes the raw columns and computes the derived features itself, with the
# functions of `tasks/data.py` that the feature tasks use. An earlier rung of
# successive halving logs none: no one serves a model fitted on part of the resource.

# %%
if halving.is_final(candidate):
    run.log_model(estimator, raw_example=X_test[data.RAW_COLUMNS].head(5))
