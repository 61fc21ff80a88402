"""The names of the metrics every fit logs, apart from the code that computes
them (tasks/models.py), so that settings.py checks compare_metric without
importing scikit-learn."""

METRICS = ("accuracy", "precision_macro", "recall_macro", "f1_macro")
# Logged beside each held-out metric M: its mean and std over the cross-validation folds
CV_METRICS = tuple(f"cv_{metric}_{stat}" for metric in METRICS for stat in ("mean", "std"))
