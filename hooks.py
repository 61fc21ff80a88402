"""Ploomber hooks: thin calls into the tracking package, where the MLflow logic lives."""
import gc
import importlib
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

import tracking
from tasks import data

# Imported once, before the workers fork from this process, not once per worker.
FIT_IMPORTS = ("ploomber_engine", "sklearn_evaluation.plot")


def preflight(dag):
    """DAG on_render: runs in the main process after the DAG is rendered and
    before any task runs. Checks the settings of every task about to run and
    every fit's model, then creates each store and experiment once, so
    parallel fits never race to create them."""
    to_run = [t for t in dag.values() if _will_run(t)]
    for task in to_run:
        if problem := _settings_problem(task.params):
            raise ValueError(problem)
    fits = [t for t in to_run if "model" in t.params]
    if not fits:
        return  # skips scikit-learn's import, a second of every no-op build
    import sklearn

    from tasks import models

    for task in fits:
        models.validate(task.params["model"])
    # The workers, forked from here, show estimators as text: reports do (the
    # HTML diagram loads from outside the report), and drawing it cost each
    # fit 12 ms and 58 KB of notebook. Jupyter still shows the diagram.
    sklearn.set_config(display="text")

    tracked = {(t.params["mlflow_tracking_uri"], t.params["experiment_name"]) for t in fits if t.params["track"]}
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
    # Everything imported so far lives as long as the workers: out of the
    # garbage collector's sight, it is neither scanned by every full
    # collection of every worker nor copied into them by those scans.
    gc.freeze()
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


def _settings_problem(params):
    """One line naming a wrong setting of env.yaml that a task uses, or None."""
    if params.get("track") and (problem := tracking.check_tracking_uri(params["mlflow_tracking_uri"])):
        return problem
    if "metric" in params:
        from tasks import models

        if params["metric"] not in models.METRICS:
            return f"compare_metric {params['metric']!r} is not a metric the fits log; pick one of {', '.join(models.METRICS)}"
    if "registered_model_name" in params and (problem := tracking.check_model_name(params["registered_model_name"])):
        return problem
    if params.get("score_input"):
        return data.check_batch_file(params["score_input"])
    return None


def _will_run(task):
    return task.exec_status.name in {"WaitingExecution", "WaitingUpstream"}
