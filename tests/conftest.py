import os
import sys
from pathlib import Path

import pytest

from deployed import grid_on_server  # noqa: F401  (a fixture: the grid on deploy/server)
from sandbox import free_ports, make_checkout, make_project, readme_blocks, run_shell, serving


@pytest.fixture
def project(tmp_path):
    return make_project(tmp_path)


@pytest.fixture(scope="module")
def built_project(tmp_path_factory):
    """The default grid, built once with tracking on, shared by a module's tests."""
    project = make_project(tmp_path_factory.mktemp("built"))
    decoy = project.path / "decoy.db"
    # a hook that forgot the build's URI would write here instead
    project.output = project.build(env={"MLFLOW_TRACKING_URI": f"sqlite:///{decoy}"})
    project.decoy = decoy
    return project


@pytest.fixture(scope="session")
def checkout(tmp_path_factory):
    """A fresh copy of the repository, set up and built by the README's first
    command as written: bin/setup makes its .venv from scratch (from uv's cache,
    in about half a minute). Shared by the README's and Jupyter's tests."""
    path = tmp_path_factory.mktemp("checkout")
    checkout = make_checkout(path)
    [first] = [block for block in readme_blocks() if block.name.startswith("bin/setup && ")]
    result = run_shell(first.text, path)
    assert result.returncode == 0, f"{first.name} failed:\n{result.stdout}\n{result.stderr}"
    checkout.output = result
    # its .venv is left to pytest's clean-up of old temporary folders: hard
    # links to uv's cache, little space, but slow to delete on a busy disk
    return checkout


@pytest.fixture
def mlflow_server(tmp_path):
    """A real `mlflow server` on a free loopback port; yields (url, process)."""
    [port] = free_ports(1)
    url = f"http://127.0.0.1:{port}"
    command = [
        str(Path(sys.executable).parent / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port),
        "--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}",
        "--artifacts-destination", str(tmp_path / "server-artifacts"),
    ]
    # no GenAI job runner: processes, and a folder in /dev/shm, a grid never uses
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    with serving(command, f"{url}/health", tmp_path / "server.log", env=env) as server:
        yield url, server
