"""One fit's MLflow run: started by the fit notebook, closed by its hook with the report."""
import functools
import io
import json
import tempfile
from pathlib import Path

from tracking.builds import PARENT_TAG, parent_run_id
from tracking.names import MODEL_ARTIFACT, REPORT_ARTIFACT
from tracking.raw_model import log_raw_model, pip_requirements
from tracking.reports import notebook_to_html
from tracking.store import connect, known_mlflow_warnings_silenced, prepare_store, run_tags, store_answers


def start_fit_run(track, tracking_uri, experiment_name, spec, record_path):
    """Start the MLflow run of one fit and record its id, and the spec it
    trains, in `record_path` (the fit's record: see `record_scores`).

    With track off, returns a run that logs nothing. The run stays RUNNING
    until hooks.py attaches the notebook report and closes it.
    """
    from tasks import halving, search  # not at the top: a logged model ships tracking/, not tasks/

    if not track:
        _write_record(record_path, run_id=None, candidate=spec, final=halving.is_final(spec))
        return UntrackedRun()

    import mlflow

    experiment_id = prepare_store(tracking_uri, experiment_name)  # only reads, once it exists
    if mlflow.active_run() is not None:
        # left over by an earlier notebook in this process: a worker's, or run by hand in Jupyter
        if _UNLOGGED.get("run_id") == mlflow.active_run().info.run_id:
            _log_unlogged(_UNLOGGED["run_id"], {})
        mlflow.end_run("FAILED")
    parent = parent_run_id(tracking_uri, experiment_id, Path(str(record_path)).parent)
    run = mlflow.start_run(
        experiment_id=experiment_id,
        run_name=spec["name"],
        tags={
            **run_tags("fit"),
            **({PARENT_TAG: parent} if parent else {}),
            # the configuration, to train it again (a champion re-evaluated on other folds)
            "model.params": json.dumps(spec["params"], sort_keys=True, default=str),
            "model.family": spec["class"].rsplit(".", 1)[-1],
            "model.class": spec["class"],
            **search.run_tags(spec),
        },
    )
    _write_record(record_path, run_id=run.info.run_id, candidate=spec, final=halving.is_final(spec))
    return TrackedRun(run.info.run_id)


class TrackedRun:
    """Logs one fit to the active MLflow run.

    Its params, metrics and tags wait in `_UNLOGGED` and go to the store in one
    request when the run closes (finish_fit_run, succeeded or failed): each
    request to an SQLite store is a transaction, about 8 ms of CPU and 30 ms of
    wall time, and a fit made seven of them.
    """

    def __init__(self, run_id):
        self.run_id = run_id
        _UNLOGGED.update(run_id=run_id, params={}, metrics={}, tags={})
        _log_unlogged_at_exit_once()

    def log_params(self, params):
        _UNLOGGED["params"].update({key: _short(value) for key, value in params.items()})

    def log_metrics(self, metrics):
        _UNLOGGED["metrics"].update(metrics)

    def set_tags(self, tags):
        _UNLOGGED["tags"].update(tags)

    def log_dataset(self, table, source, name, context, target):
        import mlflow
        from mlflow.entities import DatasetInput, InputTag
        from mlflow.exceptions import MlflowException
        from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

        with known_mlflow_warnings_silenced():
            # MLflow's dataset keeps no target name: a champion's is compared with a challenger's
            self.set_tags({"data.target": target})
            inputs = [DatasetInput(dataset_entity(table, source, name, target), [InputTag(MLFLOW_DATASET_CONTEXT, context)])]
            client = mlflow.MlflowClient()
            try:
                client.log_inputs(self.run_id, datasets=inputs)
            except MlflowException as error:
                # Parallel fits log the same dataset; the store checks for it,
                # then inserts it, so all but the first insert can collide.
                # Once it exists, logging again only links it to this run.
                if "unique" not in str(error).lower():
                    raise
                client.log_inputs(self.run_id, datasets=inputs)

    def log_figure(self, figure, artifact_file):
        """Log `figure` as a PNG and return that image for the notebook to show.

        The figure is closed, so it is drawn once instead of again by the
        notebook's inline backend. The image's alt text is the figure's label,
        else the artifact's name.
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
        return Image(png.getvalue(), alt=figure.get_label() or Path(artifact_file).stem.replace("_", " "))

    def log_text(self, text, artifact_file):
        import mlflow

        mlflow.log_text(text, artifact_file)

    def log_model(self, estimator, raw_example):
        """Log the fitted `estimator` as a model that takes raw rows like `raw_example`."""
        with known_mlflow_warnings_silenced():
            # listing requirements skips MLflow's slow inference subprocess
            log_raw_model(MODEL_ARTIFACT, estimator, raw_example, pip_requirements())


def dataset_entity(table, source, name, target):
    """The MLflow dataset of `table` (digest, schema, profile), computed once per process for
    each table: every fit of a build logs the same training split.

    The table is known by its source file (path, size, modification time), its
    columns and its rows' index labels: the same source and rows are the same table.
    """
    import hashlib

    import mlflow
    import pandas as pd

    stat = Path(str(source)).stat()
    rows = hashlib.sha256(pd.util.hash_pandas_object(table.index, index=False).to_numpy().tobytes()).hexdigest()
    key = (str(source), stat.st_size, stat.st_mtime_ns, name, target, tuple(map(str, table.columns)), rows)
    if key not in _DATASETS:
        dataset = mlflow.data.from_pandas(table, source=str(source), targets=target, name=name)
        if schema := _numeric_schema(table):
            dataset.__dict__["schema"] = schema  # PandasDataset.schema is a functools.cached_property
        _DATASETS.clear()  # a process logs one table at a time: keep no other
        _DATASETS[key] = dataset._to_mlflow_entity()
    return _DATASETS[key]


def _numeric_schema(table):
    """MLflow's schema of `table` when every column is numeric, else None.

    MLflow infers a column's type from its dtype, then tests every value for
    None or NaN in Python to say whether the column is required. Here MLflow
    infers the schema of a few rows that keep the dtypes and, for each column
    that has one, the first missing value: the same schema
    (tests/test_dataset_schema.py). At 70,000 rows x 31 columns a dataset
    took 1.35 s of CPU, now 0.28 s (benchmarks/phases.py --rows 100000 --columns 30)."""
    import mlflow

    if not all(dtype.kind in "biuf" for dtype in table.dtypes):
        return None  # an object column's type depends on its values: MLflow looks at all of them
    missing = table.isna().to_numpy()
    rows = sorted({0, *missing.argmax(axis=0)[missing.any(axis=0)].tolist()}) if len(table) else []
    return mlflow.data.from_pandas(table.iloc[rows]).schema


_DATASETS = {}
# what this process's fit run has yet to log: {"run_id", "params", "metrics", "tags"}
_UNLOGGED = {}


@functools.cache
def _log_unlogged_at_exit_once():
    """A notebook run by hand (Jupyter) has no hook to close its run: log what waits
    when the kernel exits, before MLflow's own exit handler (registered earlier) ends the run."""
    import atexit

    atexit.register(_log_unlogged_at_exit)


def _log_unlogged_at_exit():
    if _UNLOGGED.get("run_id"):
        try:
            _log_unlogged(_UNLOGGED["run_id"], {})
        except Exception as error:  # the store may be gone; exiting anyway
            print(f"The fit's params and scores were not logged: {error}")


def _log_unlogged(run_id, tags):
    """Log, in one request, the fit's waiting params, metrics and tags, and `tags`."""
    import time

    import mlflow
    from mlflow.entities import Metric, Param, RunTag

    unlogged = dict(_UNLOGGED) if _UNLOGGED.get("run_id") == run_id else {}
    _UNLOGGED.clear()
    now = int(time.time() * 1000)
    mlflow.MlflowClient().log_batch(
        run_id,
        metrics=[Metric(key, float(value), now, 0) for key, value in unlogged.get("metrics", {}).items()],
        params=[Param(key, str(value)) for key, value in unlogged.get("params", {}).items()],
        tags=[RunTag(key, str(value)) for key, value in {**unlogged.get("tags", {}), **tags}.items()],
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
    `notebook_path` None, or a notebook never written (a fit that failed
    first): the run closes without a report.
    """
    import mlflow

    connect(tracking_uri)
    run = mlflow.active_run()
    if run is None:
        if succeeded:
            raise RuntimeError(f"{task_name}: the fit notebook finished without an MLflow run")
        return  # failed before its run started: nothing to close
    if not succeeded and not store_answers(tracking_uri, run.info.run_id):
        return  # the fit failed because the server is gone: the next build marks its run KILLED
    status = "FINISHED" if succeeded else "FAILED"
    try:
        _log_unlogged(run.info.run_id, {"ploomber.task": task_name})
        if notebook_path is not None and Path(notebook_path).exists():
            mlflow.log_text(notebook_to_html(notebook_path, title=run.info.run_name), REPORT_ARTIFACT)
    except BaseException:
        if store_answers(tracking_uri, run.info.run_id):
            mlflow.end_run("FAILED")
        raise
    mlflow.end_run(status)


def _write_record(path, **record):
    Path(str(path)).parent.mkdir(parents=True, exist_ok=True)
    Path(str(path)).write_text(json.dumps(record))


def record_scores(record_path, cv_scores, resource=None):
    """Add a fit's cross-validated scores (and its halving resource) to its record, so that
    the next rung and compare rank the fits from their records, with tracking on or off."""
    _write_record(record_path, **read_record(record_path), cv=cv_scores, resource=resource)


def read_record(record_path):
    """A fit's record: {"run_id" (None with tracking off), "candidate" (its spec), "final"
    (a full fit, not an earlier rung's), "cv" and "resource" once scored}; {} if missing or unreadable."""
    try:
        record = json.loads(Path(str(record_path)).read_text())
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def fit_records(products):
    """The records of the fit tasks among `products` (a notebook's `upstream`, or a group of it)."""
    return [read_record(product["run"]) for product in products.values()
            if hasattr(product, "get") and product.get("run") is not None]


def recorded_run_id(record_path):
    """The run id a fit recorded, or None: tracking was off, or the record is missing or unreadable."""
    return read_record(record_path).get("run_id")


def _short(value):
    # MLflow caps a param value at 6000 characters
    text = str(value)
    return text if len(text) <= 6000 else text[:5997] + "..."
