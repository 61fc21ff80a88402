"""Ploomber hooks: thin calls into tracking.py, where the MLflow logic lives."""
import importlib
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

import tracking

# Imported once, before the workers fork from this process, not once per worker.
FIT_IMPORTS = ("ploomber_engine", "sklearn_evaluation.plot")


def preflight(dag):
    """DAG on_render: runs in the main process after the DAG is rendered and
    before any task runs. Checks every fit about to run, then creates each
    store and experiment once, so parallel fits never race to create them."""
    fits = [t for t in dag.values() if "model" in t.params and _will_run(t)]
    if not fits:
        return  # up to date: skip scikit-learn's import, a second of every no-op build
    from tasks import models

    for task in fits:
        models.validate(task.params["model"])
    for task in dag.values():
        if "metric" in task.params and task.params["metric"] not in models.METRICS:
            raise models.GridError(
                f"compare_metric {task.params['metric']!r} is not a metric the fits log; "
                f"pick one of {', '.join(models.METRICS)}"
            )

    tracked = {(t.params["mlflow_tracking_uri"], t.params["experiment_name"]) for t in fits if t.params["track"]}
    for tracking_uri, _ in tracked:
        if problem := tracking.check_tracking_uri(tracking_uri):
            raise ValueError(problem)
    # What every worker would otherwise do on its first fit is done here, once,
    # before they fork from this process. Creating a fresh store (MLflow's
    # schema migrations) takes seconds too: a child process does it meanwhile.
    with ProcessPoolExecutor(1, mp_context=get_context("fork")) as pool:
        stores = [pool.submit(tracking.prepare_store, uri, name) for uri, name in tracked]
        for module in FIT_IMPORTS:
            importlib.import_module(module)
        if tracked:
            tracking.warm_up()
        for store in stores:
            store.result()
    for tracking_uri, experiment_name in tracked:
        tracking.prepare_store(tracking_uri, experiment_name)  # now only opens it
        if closed := tracking.close_dead_runs(tracking_uri, experiment_name):
            print(f"Marked KILLED {len(closed)} run(s) left RUNNING by a build that died: {', '.join(closed)}")


def fit_finished(task, product, params):
    if params["track"]:
        tracking.finish_fit_run(params["mlflow_tracking_uri"], task.name, product["nb"], succeeded=True)


def fit_failed(task, product, params):
    if params["track"]:
        tracking.finish_fit_run(params["mlflow_tracking_uri"], task.name, product["nb"], succeeded=False)


def _will_run(task):
    return task.exec_status.name in {"WaitingExecution", "WaitingUpstream"}
