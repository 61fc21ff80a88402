"""Ploomber hooks: thin calls into tracking.py, where the MLflow logic lives."""
import tracking


def prepare_tracking(dag):
    """DAG on_render: before any task runs, create the store and experiment once."""
    settings = {
        (t.params["mlflow_tracking_uri"], t.params["experiment_name"])
        for t in dag.values()
        if "model" in t.params and t.params["track"] and _will_run(t)
    }
    for tracking_uri, experiment_name in settings:
        tracking.prepare_store(tracking_uri, experiment_name)


def fit_finished(task, product, params):
    if params["track"]:
        tracking.finish_fit_run(params["mlflow_tracking_uri"], task.name, product["nb"], succeeded=True)


def fit_failed(task, product, params):
    if params["track"]:
        tracking.finish_fit_run(params["mlflow_tracking_uri"], task.name, product["nb"], succeeded=False)


def _will_run(task):
    return task.exec_status.name in {"WaitingExecution", "WaitingUpstream"}
