"""All MLflow wiring of the project, shared by the fit notebook, compare and hooks.py.

MLflow is imported inside the functions that use it: with tracking off nothing
here loads MLflow or touches a store, and rendering the DAG stays fast.
"""
import functools
import io
import json
import os
import socket
import sqlite3
import subprocess
import tempfile
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

# Before any MLflow or Ploomber code runs in this process.
TELEMETRY_OFF = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
    "PLOOMBER_STATS_ENABLED": "false",
    "PLOOMBER_VERSION_CHECK_DISABLED": "true",
}
os.environ.update(TELEMETRY_OFF)
# The model's pip requirements are listed explicitly: MLflow need not look for
# this uv project nor copy its lock file into every model.
os.environ.setdefault("MLFLOW_UV_AUTO_DETECT", "false")
os.environ.setdefault("MLFLOW_LOG_UV_FILES", "false")
# A tracking server that goes away fails the fits talking to it in about half
# a minute, instead of after MLflow's default retries (several minutes).
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "3")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "20")

# How long a write to an SQLite store waits for another process's to finish.
SQLITE_BUSY_TIMEOUT_SECONDS = 60
STORE_SCHEMES = ("sqlite", "http", "https", "postgresql", "mysql", "mssql")

# Types skops may load beyond its own defaults. Each is a scikit-learn data
# structure with no code-execution hook, reviewed by hand; together they cover
# every default-constructible scikit-learn classifier. A model that needs
# another type fails to log, naming the type, rather than fall back to pickle.
SKOPS_TRUSTED_TYPES = (
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.gaussian_process._gpc._BinaryGaussianProcessClassifierLaplace",
    "sklearn.gaussian_process.kernels.ConstantKernel",
    "sklearn.gaussian_process.kernels.Product",
    "sklearn.gaussian_process.kernels.RBF",
    "sklearn.metrics._dist_metrics.EuclideanDistance64",
    "sklearn.neighbors._ball_tree.BallTree",
    "sklearn.neighbors._kd_tree.KDTree",
    "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",
    "sklearn.neural_network._stochastic_optimizers.SGDOptimizer",
    "sklearn.tree._tree.Tree",
)

MODEL_ARTIFACT = "model"
REPORT_ARTIFACT = "report.html"
CONFUSION_MATRIX_ARTIFACT = "confusion_matrix.png"
ROLE_TAG = "grid.role"  # "fit" on every fit run, "compare" on compare's, so neither is mistaken for the other
CHAMPION_ALIAS = "champion"
LEADERBOARD_TABLE = "leaderboard.json"
LEADERBOARD_CHART = "leaderboard.png"
PROCESS_TAG = "grid.process"  # host:pid:start time of the process that runs the fit


class UntrustedModelError(RuntimeError):
    """A model file that holds types outside SKOPS_TRUSTED_TYPES."""


# ---------------------------------------------------------------- store set-up


def artifact_location(tracking_uri, experiment_name):
    """Where an experiment's artifacts go: beside a local SQLite store, or the server's choice.

    With sqlite:///mlflow.db that is ./mlartifacts/<experiment>, so
    `mlflow ui --backend-store-uri sqlite:///mlflow.db` run there finds them.
    """
    if not tracking_uri.startswith("sqlite:"):
        return None
    return (_sqlite_path(tracking_uri).resolve().parent / "mlartifacts" / experiment_name).as_uri()


def _sqlite_path(tracking_uri):
    # sqlite:///rel.db -> rel.db, sqlite:////abs.db -> /abs.db
    return Path(urlparse(tracking_uri).path[1:])


def prepare_store(tracking_uri, experiment_name):
    """The experiment's id, creating the store's tables and the experiment if missing.

    hooks.preflight calls it once before the grid fans out: parallel fits that
    each found a fresh SQLite store would race to create both. The fits then
    call it only to read the id.
    """
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    client = MlflowClient(_connect(tracking_uri))
    experiment = client.get_experiment_by_name(experiment_name)  # creates a fresh store's tables
    if tracking_uri.startswith("sqlite:"):
        with sqlite3.connect(_sqlite_path(tracking_uri)) as database:
            # persistent: parallel fits read while another writes
            database.execute("PRAGMA journal_mode=WAL")
    if experiment is not None:
        return experiment.experiment_id
    try:
        return client.create_experiment(
            experiment_name, artifact_location=artifact_location(tracking_uri, experiment_name)
        )
    except MlflowException:
        # another build created it in the meantime
        return client.get_experiment_by_name(experiment_name).experiment_id


def warm_up():
    """Do in this process what a fit does once per process: imports, compiling
    nbconvert's templates, MLflow's scan of the installed packages, setting up
    its ORM. Workers forked from here then start their first fit as fast as
    their next."""
    import mlflow.sklearn  # noqa: F401
    import mlflow.store.tracking.sqlalchemy_store  # noqa: F401
    import nbformat
    import skops.io  # noqa: F401
    import sqlalchemy.orm
    from mlflow.utils.requirements_utils import warn_dependency_requirement_mismatches

    html_exporter().from_notebook_node(nbformat.v4.new_notebook())
    warn_dependency_requirement_mismatches(_pip_requirements())
    sqlalchemy.orm.configure_mappers()


# ------------------------------------------------------------------- fit runs


def start_fit_run(track, tracking_uri, experiment_name, spec, record_path):
    """Start the MLflow run of one fit and record its id in `record_path`.

    With track off, returns a run that logs nothing. The run stays RUNNING
    until hooks.py attaches the notebook report and closes it.
    """
    if not track:
        _write_record(record_path, run_id=None)
        return UntrackedRun()

    import mlflow
    import psutil

    experiment_id = prepare_store(tracking_uri, experiment_name)  # only reads, once it exists
    if mlflow.active_run() is not None:
        # left over by an earlier notebook in this worker process
        mlflow.end_run("FAILED")
    run = mlflow.start_run(
        experiment_id=experiment_id,
        run_name=spec["name"],
        tags={
            ROLE_TAG: "fit",
            PROCESS_TAG: _process_identity(psutil.Process()),
            "model.family": spec["class"].rsplit(".", 1)[-1],
            "model.class": spec["class"],
            **_git_tags(),
        },
    )
    _write_record(record_path, run_id=run.info.run_id)
    return TrackedRun(run.info.run_id)


def close_dead_runs(tracking_uri, experiment_name):
    """Mark KILLED the fit runs left RUNNING by processes of this host that are gone.

    A build killed mid-grid cannot close its runs; the next build does.
    Runs of other hosts are left alone: whether they live cannot be told here.
    Returns the names of the runs closed.
    """
    import psutil
    from mlflow.tracking import MlflowClient

    client = MlflowClient(_connect(tracking_uri))
    experiment = client.get_experiment_by_name(experiment_name)
    running = client.search_runs(
        [experiment.experiment_id],
        filter_string=f"attributes.status = 'RUNNING' and tags.`{ROLE_TAG}` = 'fit'",
    )
    closed = []
    for run in running:
        identity = run.data.tags.get(PROCESS_TAG, "")
        host, _, rest = identity.partition(":")
        pid = rest.partition(":")[0]
        if host != socket.gethostname() or not pid.isdigit():
            continue
        try:
            process = psutil.Process(int(pid))
            # a reused pid has another start time
            alive = _process_identity(process) == identity and process.status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            alive = False
        if not alive:
            client.set_terminated(run.info.run_id, "KILLED")
            closed.append(run.info.run_name)
    return closed


def check_tracking_uri(tracking_uri):
    """One line naming what is wrong with `tracking_uri`, or None."""
    parsed = urlparse(tracking_uri)
    scheme = parsed.scheme.split("+")[0]
    if scheme not in STORE_SCHEMES:
        return f"mlflow_tracking_uri {_redacted(tracking_uri)!r}: expected one of {', '.join(STORE_SCHEMES)}"
    if scheme == "sqlite" and not (folder := _sqlite_path(tracking_uri).parent).resolve().is_dir():
        return f"mlflow_tracking_uri {tracking_uri!r}: folder {folder} does not exist"
    if scheme in ("http", "https") and not parsed.hostname:
        return f"mlflow_tracking_uri {_redacted(tracking_uri)!r}: no host"
    return None


def check_model_name(name):
    """One line naming what is wrong with a registered model's name, or None."""
    if not str(name).strip():
        return "registered_model_name is empty"
    if "/" in str(name) or ":" in str(name):
        return f"registered_model_name {name!r}: MLflow does not allow '/' or ':' in it"
    if "'" in str(name):
        return f"registered_model_name {name!r}: a quote cannot be searched for in the registry"
    return None


class TrackedRun:
    """Logs one fit to the active MLflow run."""

    def __init__(self, run_id):
        self.run_id = run_id

    def log_params(self, params):
        import mlflow

        mlflow.log_params({key: _short(value) for key, value in params.items()})

    def log_metrics(self, metrics):
        import mlflow

        mlflow.log_metrics(metrics)

    def log_dataset(self, table, source, name, context, target):
        import mlflow

        from mlflow.exceptions import MlflowException

        with _known_mlflow_warnings_silenced():
            dataset = mlflow.data.from_pandas(table, source=str(source), targets=target, name=name)
            try:
                mlflow.log_input(dataset, context=context)
            except MlflowException as error:
                # Parallel fits log the same dataset; the store checks for it,
                # then inserts it, so all but the first insert can collide.
                # Once it exists, logging again only links it to this run.
                if "unique" not in str(error).lower():
                    raise
                mlflow.log_input(dataset, context=context)

    def log_figure(self, figure, artifact_file):
        """Log `figure` as a PNG and return that image for the notebook to show.

        The figure is closed, so it is drawn once instead of again by the
        notebook's inline backend.
        """
        import matplotlib.pyplot as plt
        import mlflow
        from IPython.display import Image

        png = io.BytesIO()
        figure.savefig(png, format="png")
        plt.close(figure)
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder, artifact_file)
            path.write_bytes(png.getvalue())
            mlflow.log_artifact(str(path))
        return Image(png.getvalue())

    def log_model(self, model, input_example):
        import mlflow
        import mlflow.sklearn
        from mlflow.models import infer_signature

        with _known_mlflow_warnings_silenced():
            mlflow.sklearn.log_model(
                model,
                name=MODEL_ARTIFACT,
                signature=infer_signature(input_example, model.predict(input_example)),
                input_example=input_example,
                # listing requirements skips MLflow's slow inference subprocess
                pip_requirements=_pip_requirements(),
                serialization_format="skops",
                skops_trusted_types=trusted_types_for(model),
            )


class UntrackedRun:
    """Stands in for TrackedRun when tracking is off: logs nothing."""

    run_id = None

    def __getattr__(self, name):
        return lambda *args, **kwargs: None


def finish_fit_run(tracking_uri, task_name, notebook_path, succeeded):
    """Attach the executed notebook as HTML to this process's fit run and close it.

    Called by hooks.py in the process that ran the notebook (Ploomber's
    in-process engine), so the active run is the one this task started.
    """
    import mlflow

    # explicit: without it the hook would talk to MLflow's default store
    _connect(tracking_uri)
    run = mlflow.active_run()
    if run is None:
        if succeeded:
            raise RuntimeError(f"{task_name}: the fit notebook finished without an MLflow run")
        return  # failed before its run started: nothing to close
    status = "FINISHED" if succeeded else "FAILED"
    try:
        mlflow.set_tag("ploomber.task", task_name)
        if Path(notebook_path).exists():
            mlflow.log_text(notebook_to_html(notebook_path), REPORT_ARTIFACT)
    except BaseException:
        mlflow.end_run("FAILED")
        raise
    mlflow.end_run(status)


# -------------------------------------------------------------------- compare


def read_run_ids(fit_products):
    """Run ids recorded by the fit tasks (`upstream["fit-*"]` in compare)."""
    ids = [json.loads(Path(str(p["run"])).read_text())["run_id"] for p in fit_products.values()]
    return [run_id for run_id in ids if run_id]


def leaderboard(tracking_uri, run_ids, metric):
    """The runs of this grid, best first: `metric` descending, ties by run name ascending."""
    import mlflow

    if not run_ids:
        raise ValueError("no fit run was recorded: did the build run with --env--track true?")
    _connect(tracking_uri)
    quoted = ", ".join(f"'{run_id}'" for run_id in run_ids)
    runs = mlflow.search_runs(
        search_all_experiments=True,
        filter_string=f"attributes.run_id IN ({quoted})",
        order_by=[f"metrics.{metric} DESC", "attributes.run_name ASC"],
    )
    missing = set(run_ids) - set(runs["run_id"])
    if missing:
        raise ValueError(f"runs recorded by the fits are not in {tracking_uri}: {sorted(missing)}")
    columns = ["run_id", "tags.mlflow.runName", "tags.model.family", "status"]
    columns += [c for c in runs.columns if c.startswith("metrics.")]
    board = runs[columns].rename(columns=lambda c: c.split(".")[-1])
    return board.rename(columns={"runName": "run_name", "family": "model_family"})


def compare_experiment(experiment_name):
    """The experiment of compare's runs: beside the fits', so that every run
    listed in the fits' experiment is a model of the grid."""
    return f"{experiment_name}-compare"


@dataclass
class Champion:
    """The registered model version that the alias `champion` points at."""

    name: str
    version: str
    run_id: str
    previous_version: str | None  # where the alias pointed before, None if nowhere


def record_comparison(tracking_uri, experiment_name, board, metric, chart, registered_model_name):
    """Log this build's comparison as a run of its own and crown its best fit.

    The compare run holds the leaderboard as an MLflow table and `chart` as a
    PNG. The best run's model becomes the champion of `registered_model_name`
    (see `crown`). A failure on the way leaves the compare run FAILED.
    Returns the Champion and the chart as an image for the notebook.
    """
    import mlflow

    experiment_id = prepare_store(tracking_uri, compare_experiment(experiment_name))
    best = board.iloc[0]
    with mlflow.start_run(
        experiment_id=experiment_id,
        run_name=f"compare-{metric}",
        tags={ROLE_TAG: "compare", **_git_tags()},
    ) as run:
        mlflow.log_params({"metric": metric, "fits": len(board)})
        mlflow.log_metric(f"best_{metric}", float(best[metric]))
        mlflow.log_table(board, LEADERBOARD_TABLE)
        image = TrackedRun(run.info.run_id).log_figure(chart, LEADERBOARD_CHART)
        champion = crown(tracking_uri, registered_model_name, best["run_id"])
        mlflow.set_tags(
            {"champion.model": champion.name, "champion.version": champion.version, "champion.run_id": champion.run_id}
        )
    return champion, image


def crown(tracking_uri, registered_model_name, run_id):
    """Point the alias `champion` of `registered_model_name` at the model of `run_id`.

    The run's model is registered as a new version only if no version holds it
    yet, so comparing the same runs again changes nothing. Earlier versions
    stay in the registry; only the alias moves.
    """
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST, ErrorCode
    from mlflow.tracking import MlflowClient

    client = MlflowClient(_connect(tracking_uri))
    try:
        previous = client.get_registered_model(registered_model_name).aliases.get(CHAMPION_ALIAS)
    except MlflowException as error:
        if error.error_code != ErrorCode.Name(RESOURCE_DOES_NOT_EXIST):
            raise
        previous = None
    registered = client.search_model_versions(f"name = '{registered_model_name}' and run_id = '{run_id}'")
    if registered:
        version = min(registered, key=lambda v: int(v.version)).version
    else:
        version = _register(client, registered_model_name, run_id).version
    if previous is None or str(previous) != str(version):
        client.set_registered_model_alias(registered_model_name, CHAMPION_ALIAS, version)
    return Champion(registered_model_name, str(version), run_id, None if previous is None else str(previous))


def _register(client, registered_model_name, run_id):
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import RESOURCE_ALREADY_EXISTS, ErrorCode

    experiment_id = client.get_run(run_id).info.experiment_id
    [model] = client.search_logged_models(
        experiment_ids=[experiment_id], filter_string=f"source_run_id = '{run_id}' AND name = '{MODEL_ARTIFACT}'"
    )
    try:
        client.create_registered_model(
            registered_model_name, description=f"The best model of a grid; the alias '{CHAMPION_ALIAS}' marks the current one."
        )
    except MlflowException as error:
        if error.error_code != ErrorCode.Name(RESOURCE_ALREADY_EXISTS):
            raise
    return client.create_model_version(
        registered_model_name, source=model.model_uri, run_id=run_id, model_id=model.model_id
    )


def load_champion(tracking_uri, registered_model_name):
    """The model that `models:/<registered_model_name>@champion` names, and its ModelVersion.

    The alias is read once and the model loaded by version number, so the
    version reported is the one that made the predictions even if another
    build moves the alias meanwhile.
    """
    from mlflow.tracking import MlflowClient

    client = MlflowClient(_connect(tracking_uri))
    version = client.get_model_version_by_alias(registered_model_name, CHAMPION_ALIAS)
    return load_model(f"models:/{registered_model_name}/{version.version}", tracking_uri), version


# ------------------------------------------------------------- model loading


def trusted_types_for(model):
    """The non-default skops types `model` needs; all must be in SKOPS_TRUSTED_TYPES."""
    import skops.io

    needed = sorted(skops.io.get_untrusted_types(data=skops.io.dumps(model)))
    _refuse_untrusted(needed, what=type(model).__name__)
    return needed


def load_model(model_uri, tracking_uri):
    """Load a logged model with skops, trusting only SKOPS_TRUSTED_TYPES.

    The trusted list stored with a model is not used: whoever can edit the
    artifact can edit that list too.
    """
    import mlflow
    import skops.io
    import yaml

    _connect(tracking_uri)  # models:/ URIs resolve through the global URI
    local = Path(mlflow.artifacts.download_artifacts(model_uri))
    flavor = yaml.safe_load((local / "MLmodel").read_text())["flavors"]["sklearn"]
    if flavor.get("serialization_format") != "skops":
        raise UntrustedModelError(f"{model_uri} is not saved with skops; refusing to unpickle it")
    model_file = local / flavor["pickled_model"]
    needed = skops.io.get_untrusted_types(file=model_file)
    _refuse_untrusted(needed, what=model_uri)
    return skops.io.load(model_file, trusted=needed)


# -------------------------------------------------------------------- helpers


def notebook_to_html(notebook_path):
    """The executed notebook as HTML, code cells hidden: a report to read."""
    import nbformat

    body, _ = html_exporter().from_notebook_node(nbformat.read(str(notebook_path), as_version=4))
    return body


@functools.cache
def html_exporter():
    # one per process: building it compiles the templates, a third of a second
    from nbconvert import HTMLExporter

    return HTMLExporter(exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True)


def _refuse_untrusted(types, what):
    untrusted = sorted(set(types) - set(SKOPS_TRUSTED_TYPES))
    if untrusted:
        raise UntrustedModelError(
            f"{what} holds types outside SKOPS_TRUSTED_TYPES in tracking.py: {', '.join(untrusted)}"
        )


def _connect(tracking_uri):
    """Point this process's MLflow at `tracking_uri`; returns the URI it uses."""
    import mlflow

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


def _process_identity(process):
    """host:pid:start time, which tells a process apart from a later one with its pid."""
    return f"{socket.gethostname()}:{process.pid}:{process.create_time():.2f}"


def _redacted(uri):
    parsed = urlparse(uri)
    if parsed.password is None:
        return uri
    return uri.replace(f":{parsed.password}@", ":***@")


@contextmanager
def _known_mlflow_warnings_silenced():
    with warnings.catch_warnings():
        # MLflow registers its local-file source twice and then warns the path is ambiguous
        warnings.filterwarnings("ignore", message="The specified dataset source can be interpreted")
        # class labels are integers by nature; they are never missing
        warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer")
        yield


def _write_record(path, **record):
    Path(str(path)).parent.mkdir(parents=True, exist_ok=True)
    Path(str(path)).write_text(json.dumps(record))


def _short(value):
    # MLflow caps a param value at 6000 characters
    text = str(value)
    return text if len(text) <= 6000 else text[:5997] + "..."


def _git_tags():
    def git(*args):
        return subprocess.run(["git", *args], capture_output=True, text=True, check=True).stdout

    try:
        commit = git("rev-parse", "HEAD").strip()
        dirty = bool(git("status", "--porcelain").strip())
    except (OSError, subprocess.CalledProcessError):
        return {}
    return {"git.commit": commit, "git.dirty": str(dirty).lower()}


def _pip_requirements():
    from importlib.metadata import version

    return [f"{name}=={version(name)}" for name in ("mlflow", "scikit-learn", "skops", "pandas", "numpy")]
