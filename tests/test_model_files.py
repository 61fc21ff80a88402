"""The logged model on its own: raw rows in, no pickle, loadable with nothing but its own files."""
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import mlflow.artifacts
import mlflow.pyfunc
import pytest

import tracking
from sandbox import ROOT, log_a_model
from tasks import data

UV = ROOT / ".tools" / "bin" / "uv"


@pytest.fixture(scope="module")
def logged(tmp_path_factory):
    return log_a_model(tmp_path_factory.mktemp("logged"))


def test_the_model_asks_for_the_raw_columns_only(logged):
    uri, model_uri, raw = logged
    mlflow.set_tracking_uri(uri)
    model = mlflow.pyfunc.load_model(model_uri)
    assert model.metadata.get_input_schema().input_names() == data.RAW_COLUMNS
    assert list(model.predict(raw)) == list(tracking.load_model(model_uri, uri).predict(raw))


def test_the_model_predicts_its_own_input_example(logged):
    # MLflow's own check of the example at logging time is skipped (tracking/raw_model.py)
    uri, model_uri, raw = logged
    mlflow.set_tracking_uri(uri)
    model = mlflow.pyfunc.load_model(model_uri)
    example = model.input_example
    assert list(example.columns) == data.RAW_COLUMNS and len(example) == 3
    assert list(model.predict(example)) == list(tracking.load_model(model_uri, uri).predict(raw.head(3)))
    folder = Path(mlflow.artifacts.download_artifacts(model_uri, tracking_uri=uri))
    assert (folder / "serving_input_example.json").is_file()


def test_no_file_of_the_model_is_a_pickle(logged):
    uri, model_uri, _ = logged
    folder = Path(mlflow.artifacts.download_artifacts(model_uri, tracking_uri=uri))
    files = [p for p in folder.rglob("*") if p.is_file()]
    assert (folder / "artifacts" / "estimator.skops").is_file()
    for file in files:
        # pickle protocol 2+ starts with b"\x80"; skops files are zip archives of JSON and arrays
        assert not file.read_bytes().startswith(b"\x80"), file
        assert file.suffix not in (".pkl", ".pickle", ".cloudpickle"), file


def test_the_estimator_file_is_compressed(logged):
    # a forest's skops file is mostly arrays: stored deflated, a quarter of the size
    uri, model_uri, _ = logged
    folder = Path(mlflow.artifacts.download_artifacts(model_uri, tracking_uri=uri))
    with zipfile.ZipFile(folder / "artifacts" / "estimator.skops") as archive:
        entries = archive.infolist()
    assert entries and {entry.compress_type for entry in entries} == {zipfile.ZIP_DEFLATED}
    assert sum(e.compress_size for e in entries) < sum(e.file_size for e in entries) / 2


def test_the_model_predicts_in_a_fresh_venv_from_its_own_files(logged, tmp_path):
    uri, model_uri, raw = logged
    # a folder outside the project, with only the model's files
    model_dir = tmp_path / "model"
    shutil.copytree(mlflow.artifacts.download_artifacts(model_uri, tracking_uri=uri), model_dir)
    venv = tmp_path / "venv"
    env = {
        k: v for k, v in os.environ.items()
        if k not in ("VIRTUAL_ENV", "PYTHONPATH", "MLFLOW_TRACKING_URI") and not k.startswith("PYTEST")
    }
    env.update(UV_PYTHON_DOWNLOADS="never", MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="true",
               MLFLOW_ALLOW_PICKLE_DESERIALIZATION="false")
    # this test's own Python, not whichever uv finds first for its version
    for command in (
        [UV, "venv", "--quiet", "--python", sys.executable, venv],
        [UV, "pip", "install", "--quiet", "--python", venv / "bin" / "python", "-r", model_dir / "requirements.txt"],
    ):
        done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, done.stderr

    rows = raw.sample(20, random_state=0)
    predict = (
        "import io, json, sys, mlflow.pyfunc, pandas as pd\n"
        "rows = pd.read_json(io.StringIO(sys.stdin.read()), orient='split')\n"
        "print(json.dumps(mlflow.pyfunc.load_model('model').predict(rows).tolist()))\n"
        "import tasks, tracking\n"  # where the model's code came from: its own files
        "print(json.dumps([tasks.__file__, tracking.__file__]))\n"
        "print(json.dumps(list(sys.version_info)))\n"
    )
    done = subprocess.run(
        [venv / "bin" / "python", "-I", "-c", predict], input=rows.to_json(orient="split"),
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    predictions, sources, version = [json.loads(line) for line in done.stdout.strip().splitlines()[-3:]]
    assert version == list(sys.version_info)
    assert predictions == list(tracking.load_model(model_uri, uri).predict(rows))
    assert all(Path(source).is_relative_to(model_dir) for source in sources)


def test_logging_a_model_leaves_the_process_as_it_found_it(tmp_path):
    # MLflow's check of the input example puts the model's code folder on
    # sys.path and its code in sys.modules; a worker logs hundreds of models
    path, modules = list(sys.path), set(sys.modules)
    log_a_model(tmp_path / "first")
    path_after_first, modules_after_first = list(sys.path), set(sys.modules)
    log_a_model(tmp_path / "second")
    assert sys.path == path_after_first == path
    assert set(sys.modules) == modules_after_first
    assert not any(name.startswith("code_model_") for name in set(sys.modules) - modules)


SKOPS_LISTS = (
    "import json, sys\n"
    # what a build's process has loaded when it imports skops.io: Ploomber, MLflow, scikit-learn
    "import ploomber.spec, ploomber_engine, mlflow, mlflow.store.tracking.sqlalchemy_store, sklearn.ensemble, tasks.models\n"
    "{import_skops}\n"
    "import skops.io._utils as utils, skops.io._trusted_types as types\n"
    "print(json.dumps({{name: value for name, value in vars(types).items() if name.endswith('_TYPE_NAMES')}}))\n"
    "print(utils.whichmodule.__module__, utils.whichmodule.__qualname__)\n"
)


def test_importing_skops_through_the_index_builds_the_same_trusted_types():
    # skops' default trusted types depend on which module each scipy ufunc is
    # found in first; the indexed lookup must find the same one
    def lists(import_skops):
        done = subprocess.run(
            [sys.executable, "-c", SKOPS_LISTS.format(import_skops=import_skops)],
            cwd=ROOT, capture_output=True, text=True, timeout=300,
        )
        assert done.returncode == 0, done.stderr
        names, whichmodule = done.stdout.strip().splitlines()[-2:]
        return json.loads(names), whichmodule

    indexed, whichmodule_after = lists("import tracking.model_files as m; m.import_skops_io()")
    scanned, whichmodule = lists("import skops.io")
    assert indexed == scanned
    assert len(scanned["SCIPY_UFUNC_TYPE_NAMES"]) > 100  # the lists the scan builds
    assert whichmodule_after == whichmodule == "skops.io._utils whichmodule"  # skops' own again, after the import
