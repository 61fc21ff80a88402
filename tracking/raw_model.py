"""The model every fit logs: raw rows in, predictions out.

It is an MLflow model from code (no pickle): tracking/model_code.py, which
MLflow runs to load it, the estimator saved with skops, and, as code paths,
tasks/data.py and tasks/rows.py (the dataset and its derived features, the
very functions the feature tasks use) and this package (the reviewed skops
types). Loaded anywhere, with only its requirements.txt installed, it
computes the derived features from raw rows itself.
"""
import atexit
import functools
import shutil
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

from tracking.model_files import UntrustedModelError, dump_estimator, load_estimator
from tracking.store import connect

ESTIMATOR_ARTIFACT = "estimator"
ESTIMATOR_FILE = "estimator.skops"
MODEL_CODE = Path(__file__).with_name("model_code.py")
PROJECT = Path(__file__).resolve().parents[1]
# The project code a model needs, relative to the project folder
SHIPPED_CODE = {
    "tasks": ["__init__.py", "data.py", "rows.py"],
    "tracking": sorted(p.name for p in Path(__file__).parent.glob("*.py")),
}
CODE_FOLDER = "code"  # the folder of a logged model that holds SHIPPED_CODE, one folder per package


class RawRowsClassifier:
    """A fitted estimator that takes raw rows: the derived features are computed on the way in."""

    def __init__(self, estimator):
        self.estimator = estimator

    def predict(self, raw):
        from tasks import rows

        return self.estimator.predict(rows.model_input(raw))


def python_model():
    """The mlflow.pyfunc.PythonModel that model_code.py hands to MLflow."""
    import pandas as pd
    from mlflow.pyfunc import PythonModel

    class RawRowsModel(PythonModel):
        def load_context(self, context):
            self.classifier = RawRowsClassifier(load_estimator(context.artifacts[ESTIMATOR_ARTIFACT]))

        # the type hint tells MLflow to pass the rows as they come; the signature checks them
        def predict(self, context, model_input: pd.DataFrame, params=None):
            return self.classifier.predict(model_input)

    return RawRowsModel()


@functools.cache
def pip_requirements():
    """What a logged model needs, listed: MLflow's inference of it spawns a slow subprocess.
    Read once per process (the warm-up reads it before the workers fork)."""
    from importlib.metadata import version

    return tuple(f"{name}=={version(name)}" for name in ("mlflow", "scikit-learn", "skops", "pandas", "numpy"))


def log_raw_model(name, estimator, raw_example, pip_requirements):
    """Log `estimator` as a model from code that takes the raw columns of `raw_example`.

    MLflow's check of the input example, which loads the model just saved and
    predicts the example (a third of log_model's time), is skipped: the
    example is the raw columns the signature is inferred from, and the model
    is the same code for every fit (tests/test_model_files.py serves it).
    """
    from mlflow.models import Model, infer_signature

    predictions = RawRowsClassifier(estimator).predict(raw_example)
    with tempfile.TemporaryDirectory() as folder:
        estimator_file = Path(folder, ESTIMATOR_FILE)
        dump_estimator(estimator, estimator_file)  # refuses a type outside the reviewed list before anything is logged
        with _nothing_left_behind_by_mlflow():
            # what mlflow.pyfunc.log_model does, with validate_serving_input=False, which it does not pass on
            Model.log(
                artifact_path=None,
                name=name,
                flavor=_PyfuncFlavor,
                flavor_name="pyfunc.ModelFromCode",
                validate_serving_input=False,
                python_model=str(MODEL_CODE),
                artifacts={ESTIMATOR_ARTIFACT: str(estimator_file)},
                code_paths=list(staged_code()),
                signature=infer_signature(raw_example, predictions),
                input_example=raw_example,
                pip_requirements=list(pip_requirements),
            )


class _PyfuncFlavor:
    """mlflow.pyfunc as Model.log's flavor: Model.log hands its own options on to save_model."""

    @staticmethod
    def save_model(validate_serving_input, **options):
        import mlflow.pyfunc

        return mlflow.pyfunc.save_model(**options)


@contextmanager
def _nothing_left_behind_by_mlflow():
    """log_model runs the model's code to save it, as a module it leaves in
    sys.modules, and MLflow's check of an input example (skipped here) loads the
    saved model, which also leaves its code folder first on sys.path. In a
    process that logs a model per fit, every import and every package version
    lookup then walks one more dead folder per fit: a worker's 500th fit took
    twice as long as its first."""
    path, modules = list(sys.path), set(sys.modules)
    try:
        yield
    finally:
        sys.path[:] = path
        for name in set(sys.modules) - modules:
            if name.startswith("code_model_"):  # MLflow's name for a model-from-code module it ran
                del sys.modules[name]


@functools.cache
def staged_code():
    """Copies of the project code the model needs, one folder per package, made once per
    process (the warm-up makes them before the workers fork) and removed when it exits."""
    folder = Path(tempfile.mkdtemp(prefix="model-code-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)  # forked workers leave by os._exit, not atexit
    staged = []
    for package, files in SHIPPED_CODE.items():
        (folder / package).mkdir(parents=True)
        for file in files:
            shutil.copy(PROJECT / package / file, folder / package / file)
        staged.append(str(folder / package))
    return tuple(staged)


def load_model(model_uri, tracking_uri):
    """A logged model, ready to predict raw rows: `load_model(uri, ...).predict(raw)`.

    The estimator is loaded with skops, trusting only SKOPS_TRUSTED_TYPES: the
    list shipped with a model is not used, nor is any code shipped with it,
    since whoever can edit the artifacts can edit those too.
    """
    import mlflow

    connect(tracking_uri)  # models:/ URIs resolve through the global URI
    return load_raw_model(mlflow.artifacts.download_artifacts(model_uri))


def load_raw_model(local_path):
    """The model downloaded to `local_path`, built from this project's code, not the model's.

    Only data is read from the model's files: the estimator (skops, checked
    against this project's SKOPS_TRUSTED_TYPES, not a list stored with the
    model) and the shipped feature code, which must equal this project's, so
    that what runs here is what the model would run.
    """
    import yaml

    local = Path(local_path)
    flavor = yaml.safe_load((local / "MLmodel").read_text())["flavors"].get("python_function", {})
    artifacts = flavor.get("artifacts", {})
    if "model_code_path" not in flavor or ESTIMATOR_ARTIFACT not in artifacts or "python_model" in flavor:
        raise UntrustedModelError(f"{local_path} is not a model from code with a skops estimator; refusing to load it")
    if changed := changed_feature_code(local / flavor["code"] / "tasks"):
        raise ValueError(
            f"{local_path} computes its features with another {changed} than this project's: "
            "rebuild so that the models are trained with the current features"
        )
    return RawRowsClassifier(load_estimator(local / artifacts[ESTIMATOR_ARTIFACT]["path"]))


def changed_feature_code(shipped_tasks):
    """The first file of a model's shipped tasks/ folder that differs from this project's, as
    `tasks/<file>`, or None: such a model would compute other features than this project."""
    for file in SHIPPED_CODE["tasks"]:
        shipped = Path(shipped_tasks, file)
        if not shipped.is_file() or shipped.read_bytes() != (PROJECT / "tasks" / file).read_bytes():
            return f"tasks/{file}"
    return None
