"""Builds a copy of the project in a temporary folder against a fresh SQLite store."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
PROJECT_FILES = ["pipeline.yaml", "env.yaml", "hooks.py", "tracking.py", "tasks", "scripts", ".gitignore"]
PLOOMBER = str(Path(sys.executable).parent / "ploomber")


class Project:
    def __init__(self, path):
        self.path = path
        self.store = path / "mlflow.db"
        self.tracking_uri = f"sqlite:///{self.store}"

    def add_grid_entry(self, model, **hyperparameters):
        spec = yaml.safe_load((self.path / "pipeline.yaml").read_text())
        fit = next(t for t in spec["tasks"] if t.get("name", "").startswith("fit-"))
        fit["grid"].append(
            {"model": {"dotted_path": "tasks.models::combinations", "model": model, **hyperparameters}}
        )
        (self.path / "pipeline.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))

    def build(self, *args, track=True, check=True, env=None):
        command = [PLOOMBER, "build", "--env--track", str(track).lower()]
        command += ["--env--mlflow_tracking_uri", self.tracking_uri, *args]
        result = subprocess.run(
            command, cwd=self.path, capture_output=True, text=True, env={**os.environ, **(env or {})}
        )
        if check and result.returncode != 0:
            raise AssertionError(f"build failed:\n{result.stdout}\n{result.stderr}")
        return result

    def client(self):
        from mlflow.tracking import MlflowClient

        return MlflowClient(self.tracking_uri)

    def fit_runs(self):
        client = self.client()
        experiment = client.get_experiment_by_name("iris-grid")
        return client.search_runs([experiment.experiment_id], filter_string="tags.`grid.role` = 'fit'")


def make_project(path):
    for name in PROJECT_FILES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, path / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, path / name)
    git = ["git", "-c", "user.name=test", "-c", "user.email=test@example.com"]
    subprocess.run(git + ["init", "-q"], cwd=path, check=True)
    subprocess.run(git + ["add", "-A"], cwd=path, check=True)
    subprocess.run(git + ["commit", "-q", "-m", "project"], cwd=path, check=True)
    return Project(path)


@pytest.fixture
def project(tmp_path):
    return make_project(tmp_path)


@pytest.fixture(scope="module")
def built_project(tmp_path_factory):
    """The default grid, built once with tracking on, shared by a module's tests."""
    project = make_project(tmp_path_factory.mktemp("built"))
    decoy = project.path / "decoy.db"
    # a hook that forgot the build's URI would write here instead
    project.build(env={"MLFLOW_TRACKING_URI": f"sqlite:///{decoy}"})
    project.decoy = decoy
    return project
