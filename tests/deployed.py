"""The grid built against deploy/server: MLflow server + PostgreSQL on loopback ports.

conftest.py shares the fixture `grid_on_server`: one server and one build serve
test_server.py and test_ui.py. The scripts run with a state folder of their own in /tmp, and
deploy/server/stop runs after the last test, whatever happened.
"""
import glob
import os
import shutil
import subprocess
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from sandbox import ROOT, Project, free_ports, make_project, require

START = ROOT / "deploy" / "server" / "start"
STOP = ROOT / "deploy" / "server" / "stop"


@dataclass
class Deployed:
    url: str  # the tracking URI the build used
    state: Path  # deploy/server's STATE folder
    project: Project  # built with --env--mlflow_tracking_uri url


def server_processes(state):
    """The mlflow server and PostgreSQL started in `state`, with all their children."""
    leaders = []
    for pid_file in (state / "mlflow.pid", state / "postgres" / "data" / "postmaster.pid"):
        try:
            leaders.append(psutil.Process(int(pid_file.read_text().split()[0])))
        except (OSError, ValueError, IndexError, psutil.NoSuchProcess):
            pass
    processes = []
    for leader in leaders:
        try:
            processes += [leader, *leader.children(recursive=True)]
        except psutil.NoSuchProcess:
            pass
    return processes


def still_running(processes):
    def running(process):
        try:
            # is_running() also compares start times, so a reused pid is not mistaken
            return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False

    def name(process):
        try:
            return f"{process.pid} {' '.join(process.cmdline()[:3])}"
        except psutil.Error:  # became a zombie in the meantime
            return None

    return [described for p in processes if running(p) and (described := name(p))]


@contextmanager
def server():
    """deploy/server/start in a fresh state folder; yields (url, state); always stops it."""
    require("PostgreSQL (/usr/lib/postgresql/*/bin/initdb)", glob.glob("/usr/lib/postgresql/*/bin/initdb"), "deploy/server/install")
    # Not under pytest's tmp_path: its base folder is private to root, and
    # PostgreSQL runs as the postgres user, which must reach its data folder.
    state = Path(tempfile.mkdtemp(prefix="mlflow-server-"))
    state.chmod(0o711)
    port, pg_port = free_ports(2)
    env = {**os.environ, "STATE": str(state), "PORT": str(port), "PG_PORT": str(pg_port)}
    processes = []
    try:
        started = subprocess.run([str(START)], env=env, capture_output=True, text=True, timeout=180)
        processes = server_processes(state)
        assert started.returncode == 0, f"deploy/server/start failed:\n{started.stdout}\n{started.stderr}"
        url = started.stdout.strip().splitlines()[-1]
        assert url == f"http://127.0.0.1:{port}"
        yield url, state
    finally:
        stopped = subprocess.run([str(STOP)], env=env, capture_output=True, text=True, timeout=120)
        left = still_running(processes)
        shutil.rmtree(state, ignore_errors=True)
    # reached only when nothing failed before: do not hide the first error
    assert stopped.returncode == 0, f"deploy/server/stop failed:\n{stopped.stdout}\n{stopped.stderr}"
    assert not left, f"deploy/server/stop left processes running: {left}"


@pytest.fixture(scope="session")
def grid_on_server(tmp_path_factory):
    """The default grid built once against a fresh deploy/server (conftest.py shares it)."""
    with server() as (url, state):
        project = make_project(tmp_path_factory.mktemp("grid-on-server"))
        project.tracking_uri = url  # Project.build passes it as --env--mlflow_tracking_uri
        project.build()
        yield Deployed(url, state, project)
