"""A build is one row: the parent run that holds a build's fits as its children.

The processes of a build share one identity, `GRID_BUILD` in the environment
(host:pid:start of the process that rendered the DAG for the build):
hooks.preflight sets it when it is missing. The workers of a local build are
forked from that process; on SLURM, `soopervisor export` renders the DAG and
sbatch hands its environment to every job, so each `ploomber task` job of the
grid carries the export's identity although no process is the parent of the
others. The first fit of a build creates the parent run, tagged with the
identity, under a file lock beside the fits' records; every later fit of the
build finds it there. A build that runs no fit makes no parent.
"""
import fcntl
import functools
import os
from contextlib import contextmanager
from pathlib import Path

from tracking.names import BUILD_TAG, PROCESS_TAG, ROLE_TAG
from tracking.outage import without_retries
from tracking.store import client, close_dead_runs, process_identity, source_tags

BUILD_ENV = "GRID_BUILD"
PARENT_TAG = "mlflow.parentRunId"  # MLflow's own nesting, shown by its UI
LOCK_NAME = ".parent-run.lock"


def join_build():
    """The identity of the build this process belongs to; this process's own
    when no build handed one down."""
    import psutil

    return os.environ.setdefault(BUILD_ENV, process_identity(psutil.Process()))


def build_identity():
    return os.environ.get(BUILD_ENV)


def build_tags(identity):
    """The tags of a parent run. PROCESS_TAG only when the build's process is
    this one or its parent (a local build), so that the next build marks the
    run KILLED if that process dies; a SLURM build's exporting process is gone
    long before its build ends."""
    import psutil

    me = psutil.Process()
    local = identity in {process_identity(me), process_identity(me.parent())} if me.parent() else False
    return {ROLE_TAG: "build", BUILD_TAG: identity, **({PROCESS_TAG: identity} if local else {}), **source_tags()}


def parent_run_id(tracking_uri, experiment_id, lock_folder):
    """The run id of this build's parent run, created by the first fit that asks.

    The lock file lives beside the fits' records (products/fit/, on the
    filesystem every node of a cluster shares), so two fits starting at once
    cannot both create one.
    """
    identity = build_identity()
    if identity is None:
        return None
    return _find_or_create_parent(tracking_uri, experiment_id, identity, str(lock_folder))


@functools.cache  # a worker looks it up for its first fit only
def _find_or_create_parent(tracking_uri, experiment_id, identity, lock_folder):
    with _locked(Path(lock_folder) / LOCK_NAME):
        if (run := find_build_run(tracking_uri, identity)) is not None:
            return run.info.run_id
        return client(tracking_uri).create_run(
            experiment_id, run_name=build_run_name(identity), tags=build_tags(identity)
        ).info.run_id


def find_build_run(tracking_uri, identity=None):
    """The parent run of the build `identity` (this process's build by default), whatever its status, or None."""
    runs = runs_of_build(tracking_uri, "build", identity)
    return runs[0] if runs else None


def runs_of_build(tracking_uri, role, identity=None):
    """The runs with ROLE_TAG `role` of the build `identity` (this process's by default), oldest first."""
    identity = identity or build_identity()
    if identity is None:
        return []
    runs = client(tracking_uri).search_runs(
        _experiments_with_runs(tracking_uri),
        filter_string=f"tags.`{BUILD_TAG}` = '{identity}' and tags.`{ROLE_TAG}` = '{role}'",
    )
    return sorted(runs, key=lambda r: r.info.start_time)


def end_build(tracking_uri, status, experiment_name=None):
    """Close this build's parent run with `status` (FINISHED, FAILED); returns the run, or None without one.

    Called by every hook that may see the build end: the DAG's on_finish and
    on_failure in a local build, the last task's and a failing task's hooks on
    SLURM, where each task is a job and no process sees the whole build.
    With `experiment_name` (the DAG's on_failure hook, once the workers have
    ended), a failed build also marks KILLED the runs its dead processes left
    RUNNING: a worker killed alone, or at the end of a stop's grace, could not
    close its fit's run.
    """
    if status == "FAILED":
        # The build may have failed because the store is gone: asked once,
        # without MLflow's retries, so that the build's one line comes at once.
        # A parent left RUNNING is closed by the next build (PROCESS_TAG).
        with without_retries():
            try:
                run = _close(tracking_uri, status)
                if experiment_name is not None:
                    close_dead_runs(tracking_uri, experiment_name)
                return run
            except Exception:
                return None
    return _close(tracking_uri, status)


def _close(tracking_uri, status):
    run = find_build_run(tracking_uri)
    if run is None:
        return None
    store = client(tracking_uri)
    if run.info.status == "RUNNING" or status == "FAILED":
        store.set_terminated(run.info.run_id, status)
    return store.get_run(run.info.run_id)


def _experiments_with_runs(tracking_uri):
    return [e.experiment_id for e in client(tracking_uri).search_experiments()]


def build_run_name(identity):
    """build-<date>-<time>, from the start time in the identity, in UTC."""
    from datetime import datetime, timezone

    started = float(identity.rsplit(":", 1)[-1])
    return "build-" + datetime.fromtimestamp(started, timezone.utc).strftime("%Y%m%d-%H%M%S")


@contextmanager
def _locked(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
