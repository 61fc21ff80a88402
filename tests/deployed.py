"""The grid built against deploy/server: MLflow server + PostgreSQL on loopback ports.

conftest.py shares the fixture `grid_on_server`: one server and one build serve
test_server.py, test_ui.py and test_accounts.py. The scripts run with a state folder of their own
in /tmp, and deploy/server/stop runs after the last test, whatever happened.

The server has accounts (MLflow's basic-auth app): while it runs, this process's MLflow clients,
and the builds it starts, sign in as its builder (`signed_in`).
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


CREDENTIALS = ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")


@dataclass
class Deployed:
    url: str  # the tracking URI the build used
    state: Path  # deploy/server's STATE folder
    project: Project  # built with --env--mlflow_tracking_uri url, signed in as builder
    output: str  # what that build printed


def credentials(env_file):
    """The MLFLOW_TRACKING_* variables of a $STATE/NAME.env that deploy/server wrote."""
    return dict(line.split("=", 1) for line in Path(env_file).read_text().splitlines() if "=" in line)


def passwords(state):
    """Every password deploy/server generated in `state`, to look for where none may be."""
    return [credentials(f)["MLFLOW_TRACKING_PASSWORD"] for f in sorted(Path(state).glob("*.env"))]


def files_holding(folder, secrets):
    """The files under `folder` (links not followed) that hold any of `secrets`."""
    found = []
    for parent, _, names in os.walk(folder):
        for name in names:
            path = Path(parent) / name
            if path.is_file() and not path.is_symlink():
                content = path.read_bytes()
                found += [str(path) for secret in secrets if secret.encode() in content]
    return found


@contextmanager
def signed_in(env_file):
    """This process's MLflow clients (and what it starts) sign in with `env_file`'s
    credentials, or with none (`env_file` None), until the block ends."""
    saved = {key: os.environ.get(key) for key in CREDENTIALS}
    for key in CREDENTIALS:
        os.environ.pop(key, None)
    if env_file is not None:
        os.environ.update(credentials(env_file))
    try:
        yield
    finally:
        for key, value in saved.items():
            os.environ.pop(key, None)
            if value is not None:
                os.environ[key] = value


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
    """deploy/server/start in a fresh state folder, signed in as its builder;
    yields (url, state); always stops it."""
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
        with signed_in(state / "builder.env"):
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
        built = project.build()
        yield Deployed(url, state, project, built.stdout + built.stderr)
