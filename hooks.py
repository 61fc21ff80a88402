"""Ploomber hooks: thin calls into settings.py and the tracking package, where the logic lives."""
import atexit
from pathlib import Path

import networkx
from ploomber.constants import TaskStatus

import settings
import tracking
from runner import interrupts, lock, warm_up
from tasks import data, search

PROJECT_FOLDER = Path(__file__).resolve().parent


def preflight(dag, env, project):
    """DAG on_render: runs in the main process after the DAG is rendered and
    before any task runs. `env` holds every setting as rendered for this build
    (pipeline.yaml passes them), `project` the folder of pipeline.yaml.

    A build first takes the project's build lock, so a second one stops here,
    having touched nothing. It sets to run again what Ploomber sees as up to
    date but the store does not: a fit that recorded no run, compare when its
    leaderboard ranks another grid. Then it checks the settings and the keys
    of the env file and, if anything is to run, the settings against the
    data and every fit's model; says where the runs go, creates each store
    and experiment once, so parallel fits never race to create them, and
    closes the runs that dead builds left RUNNING.
    """
    building = lock.building()
    if building:
        interrupts.handle()
        lock.hold(PROJECT_FOLDER)
    _rerun_what_the_store_lacks(dag)
    to_run = [t for t in dag.values() if _will_run(t)]
    env_file = settings.env_file_of(project)
    settings.check(env, env_file, values=bool(to_run))
    if not to_run or lock.showing():
        # Skips scikit-learn's import (1 to 1.6 s) and the data and model checks:
        # a no-op build and `ploomber status` or `plot` fit nothing.
        return
    if any("test_size" in t.params for t in to_run):
        settings.check_data(env, data.load()[data.TARGET])
    tracked = env["track"] and any(t.params.get("track") for t in to_run)
    if tracked:
        tracking_uri, where = tracking.resolve_tracking_uri(
            env["mlflow_tracking_uri"], settings.given_by(env["mlflow_tracking_uri"], env_file)
        )
        print(tracking.where_runs_go(tracking_uri, where))
        tracking.join_build()  # before the workers fork, and before soopervisor's sbatch copies the environment
    fits = [t for t in to_run if search.what_is(t).is_fit]
    if fits:
        _validate_fits(fits)
        if building:  # not `ploomber status` or `ploomber task`: no workers fork from them
            warm_up.warm_up_workers((tracking_uri, env["experiment_name"]) if tracked else None)
    if tracked:
        tracking.prepare_store(tracking_uri, env["experiment_name"])  # only opens it, once it exists
        tracking.check_can_write(tracking_uri, env["experiment_name"], env["registered_model_name"])
        if closed := tracking.close_dead_runs(tracking_uri, env["experiment_name"]):
            print(f"Marked KILLED {len(closed)} run(s) left RUNNING by a build that died: {', '.join(closed)}")


def _validate_fits(fits):
    import sklearn

    from tasks import models

    for task in fits:
        if search.what_is(task).candidate is not None:  # a later rung's place: its candidate was checked on rung 0
            models.validate(task.params["model"])
    # The workers, forked from here, show estimators as text: reports do (the
    # HTML diagram loads from outside the report), and drawing it cost each
    # fit 12 ms and 58 KB of notebook. Jupyter still shows the diagram.
    sklearn.set_config(display="text")


def fit_finished(task, product, params):
    if params["track"]:
        tracking.finish_fit_run(params["mlflow_tracking_uri"], task.name, product["nb"], succeeded=True)


def fit_failed(task, product, params):
    if params["track"]:
        tracking.finish_fit_run(params["mlflow_tracking_uri"], task.name, product["nb"], succeeded=False)
        tracking.end_build(params["mlflow_tracking_uri"], "FAILED")


def build_finished(dag):
    """DAG on_finish: closes the build's parent run and, if compare ran, prints the build's summary."""
    if (compare := _tracked(dag, "compare")) is not None:
        tracking.end_build(compare.params["mlflow_tracking_uri"], "FINISHED")
        if compare.exec_status.name == "Executed":
            summary = tracking.build_summary(compare.params["mlflow_tracking_uri"], compare.product["leaderboard"])
            if lock.build_command():
                # after Ploomber's table of tasks: the build's last line is the command that opens its store
                atexit.register(print, summary)
            else:
                print(summary)


def build_failed(dag):
    """DAG on_failure (a failed or interrupted build): closes the build's parent run FAILED,
    and the runs of fits whose worker was killed."""
    if (compare := _tracked(dag, "compare")) is not None:
        tracking.end_build(compare.params["mlflow_tracking_uri"], "FAILED", compare.params["experiment_name"])


# Task hooks that close the parent run where no process sees the whole build:
# on SLURM each task is a job of its own, and the DAG's hooks never run.
def last_task_finished(params):
    if params["track"]:
        tracking.end_build(params["mlflow_tracking_uri"], "FINISHED")


def task_failed(params):
    if params["track"]:
        tracking.end_build(params["mlflow_tracking_uri"], "FAILED")


def _tracked(dag, name):
    task = dag[name] if name in list(dag) else None
    return task if task is not None and task.params.get("track") else None


def _rerun_what_the_store_lacks(dag):
    """Sets to run what Ploomber sees as up to date (it compares timestamps,
    code and params) though the store lacks it. A fit whose record holds no
    run id: fit.py run by hand with tracking off (in Jupyter, after `ploomber
    nb --inject`) writes such a record over that fit's own, and compare would
    rank the grid without it. compare, when its leaderboard ranks other runs
    than the fits recorded: the grid went back to fits that are all up to
    date, and Ploomber does not see which tasks `fit-*` matches. The
    leaderboard ranks full fits only: not a halving search's earlier rungs."""
    if (compare := _tracked(dag, "compare")) is None:
        return
    fits = [task for task in compare.upstream.values() if search.what_is(task).is_fit]
    records = {task.name: tracking.read_record(task.product["run"]) for task in fits}
    for task in fits:
        if records[task.name].get("run_id") is None and task.exec_status.name == "Skipped":
            _rerun(dag, task)
    if compare.exec_status.name != "Skipped":
        return  # it runs anyway, after a fit set to run above or an outdated one
    ranked = [record.get("run_id") for record in records.values() if record.get("final", True)]
    if tracking.ranks_other_runs(compare.product["leaderboard"], ranked):
        _rerun(dag, compare)


def _rerun(dag, task):
    # set directly: the property's setter would move none of them
    task._exec_status = TaskStatus.WaitingExecution
    for name in networkx.descendants(dag._G, task.name):
        dag[name]._exec_status = TaskStatus.WaitingUpstream


def _will_run(task):
    return task.exec_status.name in {"WaitingExecution", "WaitingUpstream"}
