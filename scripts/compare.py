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
# # Compare the grid
#
# Asks MLflow for the runs that this build's fits logged and ranks them by
# `metric`, highest first; among equal scores the run name that sorts first
# wins. The ranking is saved as `leaderboard.csv`.

# %% tags=["parameters"]
upstream = ["fit-*"]
product = None
track = False
mlflow_tracking_uri = None
metric = "accuracy"

# %%
import pandas as pd

import tracking

# %%
run_ids = tracking.read_run_ids(upstream["fit-*"])
if track:
    board = tracking.leaderboard(mlflow_tracking_uri, run_ids, metric)
else:
    print("Tracking is off: there are no MLflow runs to compare. "
          "Build with --env--track true to log and rank the grid.")
    board = pd.DataFrame(columns=["run_id", "run_name", metric])
board.to_csv(product["leaderboard"], index=False)

# %% [markdown]
# ## Leaderboard

# %%
if len(board):
    best = board.iloc[0]
    print(f"Best by {metric}: {best['run_name']} ({best[metric]:.4f}), run {best['run_id']}")
board
