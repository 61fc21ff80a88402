"""The tracking store: connecting to it, checking and creating it once, the tags
of every run, closing runs of dead builds."""
import functools
import os
import socket
import sqlite3
import subprocess
import warnings
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse

from tracking.names import PROCESS_TAG, ROLE_TAG, compare_experiment
from tracking.outage import (
    SIGN_IN,
    StoreUnavailable,
    causes,
    check_store_writable,
    refused_credentials,
    store_failure,
    unreachable_line,
    without_retries,
)
from tracking.uri import redacted, resolve_tracking_uri, sqlite_path

# The model's pip requirements are listed explicitly: MLflow need not look for
# this uv project nor copy its lock file into every model.
os.environ.setdefault("MLFLOW_UV_AUTO_DETECT", "false")
os.environ.setdefault("MLFLOW_LOG_UV_FILES", "false")
# Logging a model loads it back to check its input example; no progress bars
# of those downloads in every fit's report.
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
# A tracking server that goes away fails the fits talking to it in about half
# a minute, instead of after MLflow's default retries (several minutes).
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "3")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "20")

# How long a write to an SQLite store waits for another process's to finish.
SQLITE_BUSY_TIMEOUT_SECONDS = 60
STORE_SCHEMES = ("sqlite", "http", "https", "postgresql", "mysql", "mssql")


def connect(tracking_uri):
    """Point this process's MLflow at `tracking_uri`; returns the URI it uses.

    Every caller passes the build's URI explicitly: a hook that did not would
    talk to MLflow's default store.
    """
    import mlflow

    tracking_uri, _ = resolve_tracking_uri(tracking_uri)
    if tracking_uri.startswith("sqlite:"):
        # No pooled connections: the workers are forked from the process that
        # opened the store, and an SQLite connection must not cross a fork.
        os.environ.setdefault("MLFLOW_SQLALCHEMYSTORE_POOLCLASS", "NullPool")
        if "?" not in tracking_uri:
            # Concurrent writers wait for each other instead of failing with
            # "database is locked" after SQLite's default 5 s.
            tracking_uri = f"{tracking_uri}?timeout={SQLITE_BUSY_TIMEOUT_SECONDS}"
    mlflow.set_tracking_uri(tracking_uri)
    return tracking_uri


def client(tracking_uri):
    from mlflow.tracking import MlflowClient

    return MlflowClient(connect(tracking_uri))


def artifact_location(tracking_uri, experiment_name):
    """Where an experiment's artifacts go: beside a local SQLite store, or the server's choice.

    With sqlite:///mlflow.db that is ./mlartifacts/<experiment>, so
    `mlflow ui --backend-store-uri sqlite:///mlflow.db` run there finds them.
    """
    tracking_uri, _ = resolve_tracking_uri(tracking_uri)
    if not tracking_uri.startswith("sqlite:"):
        return None
    return (sqlite_path(tracking_uri).resolve().parent / "mlartifacts" / experiment_name).as_uri()


def prepare_store(tracking_uri, experiment_name):
    """The experiment's id, creating the store's tables and the experiment if missing.

    hooks.preflight calls it once before the grid fans out: parallel fits that
    each found a fresh SQLite store would race to create both. The fits then
    call it only to read the id. A store that cannot be reached or written
    raises StoreUnavailable, whose message is one line naming it.
    """
    tracking_uri, _ = resolve_tracking_uri(tracking_uri)
    try:
        return _prepare_store(tracking_uri, experiment_name)
    except Exception as error:
        if reason := store_failure(causes(error)):
            raise StoreUnavailable(unreachable_line(tracking_uri, reason)) from error
        if refused := refused_credentials(error, tracking_uri):
            raise StoreUnavailable(f"{refused}; no fit was started. {SIGN_IN}") from None
        raise


def _prepare_store(tracking_uri, experiment_name):
    from mlflow.exceptions import MlflowException

    store = client(tracking_uri)
    experiment = store.get_experiment_by_name(experiment_name)  # creates a fresh store's tables
    if tracking_uri.startswith("sqlite:"):
        with sqlite3.connect(sqlite_path(tracking_uri)) as database:
            # persistent: parallel fits read while another writes
            database.execute("PRAGMA journal_mode=WAL")
    if experiment is not None:
        return experiment.experiment_id
    try:
        return store.create_experiment(
            experiment_name, artifact_location=artifact_location(tracking_uri, experiment_name)
        )
    except MlflowException:
        # another build created it in the meantime
        return store.get_experiment_by_name(experiment_name).experiment_id


def close_dead_runs(tracking_uri, experiment_name):
    """Mark KILLED every run of the project left RUNNING by a process of this host that is gone.

    A build killed mid-grid cannot close its runs; the next build does. That
    holds for every role (fit, compare, build, ...), in the fits' experiment
    and compare's. Runs of other hosts are left alone: whether they live
    cannot be told here. Returns the names of the runs closed.
    """
    store = client(tracking_uri)
    experiments = [store.get_experiment_by_name(n) for n in (experiment_name, compare_experiment(experiment_name))]
    ids = [e.experiment_id for e in experiments if e is not None]
    if not ids:
        return []
    running = store.search_runs(ids, filter_string="attributes.status = 'RUNNING'", max_results=50000)
    closed = []
    for run in running:
        if process_is_gone(run.data.tags.get(PROCESS_TAG, "")):
            store.set_terminated(run.info.run_id, "KILLED")
            closed.append(run.info.run_name)
    return closed


def process_is_gone(identity):
    """Whether `identity` (host:pid:start time) names a process of this host that no longer runs."""
    import psutil

    host, _, rest = identity.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False  # another host's, or untagged: whether it lives cannot be told
    try:
        process = psutil.Process(int(pid))
        # a reused pid has another start time
        return process_identity(process) != identity or process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def check_tracking_uri(tracking_uri, where="mlflow_tracking_uri"):
    """One line naming what is wrong with `tracking_uri`, and where it came from, or None."""
    parsed = urlparse(tracking_uri)
    scheme = parsed.scheme.split("+")[0]
    named = f"tracking URI {redacted(tracking_uri)!r} (from {where})"
    if scheme not in STORE_SCHEMES:
        return f"{named}: expected one of {', '.join(STORE_SCHEMES)}"
    if scheme == "sqlite" and not (folder := sqlite_path(tracking_uri).parent).resolve().is_dir():
        return f"{named}: folder {folder} does not exist"
    if scheme in ("http", "https") and not parsed.hostname:
        return f"{named}: no host"
    return check_store_writable(tracking_uri)


def process_identity(process):
    """host:pid:start time, which tells a process apart from a later one with its pid."""
    return f"{socket.gethostname()}:{process.pid}:{process.create_time():.2f}"


def run_tags(role):
    """The tags every run of the project carries.

    ROLE_TAG tells fit, compare and build runs apart; PROCESS_TAG lets a later
    build close the run if this process dies. MLflow's own source tags show the
    commit in its UI (they are left out where the project is no git checkout),
    and git.dirty says whether the code had uncommitted changes.
    """
    import psutil

    return {ROLE_TAG: role, PROCESS_TAG: process_identity(psutil.Process()), **source_tags()}


@functools.cache
def source_tags():
    """MLflow's lineage tags for a build run from the working directory's git checkout; none outside one.

    Read once per process: a build's code is the code at its start (the
    warm-up, runner/warm_up.py, reads it before the workers fork), whatever is committed meanwhile.
    """
    def git(*args):
        return subprocess.run(["git", *args], capture_output=True, text=True, check=True).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain"))
    except (OSError, subprocess.CalledProcessError):
        return {}
    return {
        "mlflow.source.git.commit": commit,
        # every run comes from building the pipeline; the UI shows its name beside the commit
        "mlflow.source.name": str(Path.cwd() / "pipeline.yaml"),
        "mlflow.source.type": "LOCAL",
        "git.dirty": str(dirty).lower(),
    }


def store_answers(tracking_uri, run_id):
    """Whether a tracking server answers about `run_id` now, asked once, without
    MLflow's retries: a hook that closes a failed fit's run asks before it
    writes, so that a server that is gone costs one retry window, not two.
    Other stores fail at once and are not asked."""
    if not tracking_uri.startswith(("http:", "https:")):
        return True
    with without_retries():
        try:
            client(tracking_uri).get_run(run_id)
        except Exception:
            return False
    return True


@contextmanager
def known_mlflow_warnings_silenced():
    with warnings.catch_warnings():
        # MLflow registers its local-file source twice and then warns the path is ambiguous
        warnings.filterwarnings("ignore", message="The specified dataset source can be interpreted")
        # class labels are integers by nature; they are never missing
        warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer")
        # the model's predict takes a DataFrame; its signature is given, not inferred from hints
        warnings.filterwarnings("ignore", message=".*Add type hints to the `predict` method")
        yield
