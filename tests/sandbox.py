"""A copy of the project in a folder of its own, built against its own SQLite store.

Used by the tests and by benchmarks/run.py.
"""
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
PROJECT_FILES = [
    "pipeline.yaml", "env.yaml", "settings.py", "hooks.py", "tracking", "runner", "tasks", "scripts", ".gitignore",
]
PLOOMBER = str(Path(sys.executable).parent / "ploomber")

def sized_grid(fits):
    """Grid entries with `fits` fits (a multiple of 64), every fit as light as
    those of the 64-fit grid: half random forests, half AdaBoost, of 5 to 40
    estimators; larger grids add values of hyperparameters that cost nothing."""
    if fits <= 0 or fits % 64:
        raise ValueError(f"a sized grid has a multiple of 64 fits, not {fits}")
    k = fits // 64
    forest = {
        "model": "sklearn.ensemble.RandomForestClassifier",
        "n_estimators": [5, 10, 15, 20, 25, 30, 35, 40],
        "criterion": ["gini", "entropy"],
        "max_depth": [2, None],
    }
    if k > 1:
        forest["min_samples_leaf"] = list(range(1, k + 1))
    boost = {
        "model": "sklearn.ensemble.AdaBoostClassifier",
        "n_estimators": [5, 10, 15, 20, 25, 30, 35, 40],
        "learning_rate": [0.25, 0.5, 1.0, 2.0] if k == 1 else [round(0.05 * (i + 1), 2) for i in range(4 * k)],
    }
    return [forest, boost]


# 64 fits that cost little beyond their logging: the stress test wants many
# writes to one store from both workers at once, not long fits between them
WIDE_GRID = [{
    "model": "sklearn.tree.DecisionTreeClassifier",
    "criterion": ["gini", "entropy"],
    "max_depth": [1, 2, 3, 4],
    "min_samples_leaf": list(range(1, 9)),
}]


class Project:
    def __init__(self, path):
        self.path = path
        self.store = path / "mlflow.db"
        self.tracking_uri = f"sqlite:///{self.store}"

    def add_grid_entry(self, model, **hyperparameters):
        self.set_grid(self.grid() + [{"model": model, **hyperparameters}])

    def add_sampled_entry(self, model, n_candidates, **space):
        """A sampled entry, drawn with the build's seed."""
        self.add_grid_entry(model, n_candidates=n_candidates, **space)

    def grid(self):
        """The grid entries of pipeline.yaml, as {"model": ..., hyperparameter: values} (and n_candidates)."""
        return self._search_tasks(self._spec())[0]["grid"]["model"]["entries"]

    def set_grid(self, entries):
        """The entries of the search: of its candidates and of its rungs."""
        spec = self._spec()
        for task in self._search_tasks(spec):
            task["grid"]["model"]["entries"] = list(entries)
        (self.path / "pipeline.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))

    def _spec(self):
        return yaml.safe_load((self.path / "pipeline.yaml").read_text())

    @staticmethod
    def _search_tasks(spec):
        return [t for t in spec["tasks"] if "entries" in t.get("grid", {}).get("model", {})]

    def build_command(self, *args, track=True, store=True):
        """`store=False` leaves the tracking URI to MLFLOW_TRACKING_URI and env.yaml."""
        command = [PLOOMBER, "build", "--env--track", str(track).lower()]
        if store:
            command += ["--env--mlflow_tracking_uri", self.tracking_uri]
        return command + list(args)

    def build(self, *args, track=True, store=True, check=True, env=None):
        result = subprocess.run(
            self.build_command(*args, track=track, store=store),
            cwd=self.path,
            capture_output=True,
            text=True,
            env={**os.environ, **(env or {})},
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


def make_project(path, code=ROOT):
    """A copy of the project whose code is `code`'s (a checkout of this repository) in `path`."""
    for name in PROJECT_FILES:
        source = code / name
        if source.is_dir():
            shutil.copytree(source, path / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, path / name)
    _commit(path)
    return Project(path)


def make_checkout(path, venv=None):
    """The whole repository as a fresh clone has it, with the working tree's
    uncommitted edits: no .venv (or a link to `venv`), and .tools linked, so
    that bin/setup does not fetch uv from PyPI again."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout
    for name in filter(None, listed.split("\0")):
        if (ROOT / name).is_file():  # not deleted in the working tree
            (path / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, path / name)
    (path / ".tools").symlink_to(ROOT / ".tools")
    if venv:
        (path / ".venv").symlink_to(venv)
    _commit(path)
    return Project(path)


def _commit(path):
    git = ["git", "-c", "user.name=test", "-c", "user.email=test@example.com"]
    subprocess.run(git + ["init", "-q"], cwd=path, check=True)
    subprocess.run(git + ["add", "-A"], cwd=path, check=True)
    subprocess.run(git + ["commit", "-q", "-m", "project"], cwd=path, check=True)


def user_shell_env(**extra):
    """The environment of a user's shell: this test run's venv not activated,
    no MLflow or Ploomber settings exported."""
    env = {k: v for k, v in os.environ.items() if k not in {"VIRTUAL_ENV", "MLFLOW_TRACKING_URI", "PLOOMBER_ENV_FILENAME"}}
    ours = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if p != ours)
    return {**env, **extra}


def run_shell(script, cwd, timeout=900, **env):
    """`script` run by bash as a user's shell would (stopping at the first
    failing command), in `cwd`; returns the CompletedProcess."""
    return subprocess.run(
        ["bash", "-e", "-c", script], cwd=cwd, env=user_shell_env(**env), capture_output=True, text=True, timeout=timeout
    )


@dataclass
class ReadmeBlock:
    name: str  # its first command
    text: str
    untested: str | None  # why, from an `<!-- untested: why -->` line just before the block


def readme_blocks(readme=ROOT / "README.md"):
    """Every shell code block of the README (```sh, ```bash, ```shell), in order."""
    blocks = []
    lines = readme.read_text().splitlines()
    for start, line in enumerate(lines):
        if line.strip() not in {"```sh", "```bash", "```shell"}:
            continue
        end = next(i for i in range(start + 1, len(lines)) if lines[i].strip() == "```")
        text = "\n".join(lines[start + 1:end]) + "\n"
        commands = [c.split("  #")[0].strip() for c in text.splitlines() if c.strip() and not c.lstrip().startswith("#")]
        before = lines[start - 1].strip() if start else ""
        untested = re.fullmatch(r"<!--\s*untested:\s*(.+?)\s*-->", before)
        blocks.append(ReadmeBlock(commands[0] if commands else text.strip(), text, untested and untested.group(1)))
    return blocks


def free_ports(count):
    """`count` distinct loopback ports that nothing listens on."""
    probes = [socket.socket() for _ in range(count)]
    try:
        for probe in probes:
            probe.bind(("127.0.0.1", 0))
        return [probe.getsockname()[1] for probe in probes]
    finally:
        for probe in probes:
            probe.close()


@contextmanager
def serving(command, ready_url, log_path, **popen_kwargs):
    """Run `command` in a session of its own until `ready_url` answers; yields
    the process and ends it, with its children, afterwards."""
    log = open(log_path, "w")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, **popen_kwargs)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(ready_url, timeout=2)
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{command[0]} did not answer {ready_url}:\n{Path(log_path).read_text()}")
                time.sleep(0.5)
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=30)
        log.close()


class Relay:
    """A TCP relay from a free loopback port to `target_port` that can drop off
    the network for a while, as a blip between a build and its tracking server
    would: while it is down, new connections are refused and nothing flows on
    the open ones (TCP would retransmit), then it all resumes."""

    def __init__(self, target_port):
        self.target_port = target_port
        [self.port] = free_ports(1)
        self.flowing = threading.Event()
        self.up()

    def up(self):
        self.listener = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, args=(self.listener,), daemon=True).start()
        self.flowing.set()

    def down(self):
        self.flowing.clear()
        _shut(self.listener)

    def _accept(self, listener):
        while True:
            try:
                client, _ = listener.accept()
                server = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                return
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source, sink):
        try:
            while data := source.recv(1 << 16):
                self.flowing.wait()
                sink.sendall(data)
        except OSError:
            pass
        finally:
            _shut(source)
            _shut(sink)


def _shut(sock):
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()


def require(what, found, install):
    """Skip a test without `what`, except on CI (CI=true), where a missing package must fail it."""
    if found:
        return
    message = f"{what} not installed: run {install}"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message} (CI=true, so this does not skip)")
    pytest.skip(message)


def log_a_model(folder, n_estimators=3):
    """One fit's model logged to a fresh store in `folder`, without a build.

    Returns (tracking URI, model URI, the raw rows it was trained from).
    """
    from mlflow.tracking import MlflowClient
    from sklearn.datasets import load_iris

    import tracking
    from tasks import data, models, rows, search

    frame = load_iris(as_frame=True).frame
    frame.columns = [*data.RAW_COLUMNS, data.TARGET]
    raw = frame[data.RAW_COLUMNS]
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    spec = search.combinations("sklearn.ensemble.RandomForestClassifier", n_estimators=n_estimators)[0]
    tracking.prepare_store(uri, "iris-grid")
    run = tracking.start_fit_run(True, uri, "iris-grid", spec, folder / "run.json")
    run.log_model(models.build(spec, seed=0).fit(rows.model_input(raw), frame[data.TARGET]), raw_example=raw.head(3))
    tracking.finish_fit_run(uri, "fit-test", None, succeeded=True)

    client = MlflowClient(uri)
    [logged] = client.search_logged_models([client.get_experiment_by_name("iris-grid").experiment_id])
    return uri, f"models:/{logged.model_id}", raw
