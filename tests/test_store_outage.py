"""A tracking server that goes away mid-build (deploy/server), one that flaps,
an SQLite store that cannot be written, a disk that fills up."""
import os
import signal
import subprocess
import time
from collections import Counter

import pytest
from mlflow.tracking import MlflowClient

from deployed import START, server
from sandbox import Relay
from test_stopping import FITS, GRID, output, seconds_to_exit, start_build, wait_for_fits


def retry_window():
    """Seconds MLflow's client spends on a request to a server that refuses
    connections: urllib3 backs off 0, 2b, 4b, ... (b the backoff factor) and
    MLflow adds up to `jitter` to each wait."""
    retries = int(os.environ.get("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "3"))  # tracking/store.py's defaults
    factor = float(os.environ.get("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1"))
    jitter = float(os.environ.get("MLFLOW_HTTP_REQUEST_BACKOFF_JITTER", "1"))
    return sum(factor * 2 ** (n - 1) for n in range(2, retries + 1)) + retries * jitter


def fit_runs(url):
    client = MlflowClient(url)
    experiment = client.get_experiment_by_name("iris-grid")
    return client.search_runs([experiment.experiment_id], filter_string="tags.`grid.role` = 'fit'", max_results=1000)


@pytest.mark.server
def test_a_server_that_goes_away_stops_the_build_with_one_line_and_the_same_command_resumes(project):
    project.set_grid(GRID)
    with server() as (url, state):
        project.tracking_uri = url
        build = start_build(project)
        wait_for_fits(project, 3, build)
        printed = len(output(project).splitlines())

        mlflow_server = int((state / "mlflow.pid").read_text())
        elapsed = seconds_to_exit(build, lambda: os.killpg(mlflow_server, signal.SIGKILL))
        print(f"{elapsed:.1f} s from the kill to the exit; MLflow's retry window {retry_window():.0f} s")

        assert build.returncode != 0
        assert elapsed < retry_window() + 10
        after = output(project).splitlines()[printed:]
        assert len(after) < 50, "\n".join(after)
        assert not [line for line in after if "Traceback" in line]
        last = after[-1]
        assert last.startswith(f"The tracking server {url} has been unreachable since ")
        assert "fits done" in last and "failed" in last and "not started" in last
        assert last.endswith("run the same command to resume.")

        started = subprocess.run(
            [str(START)], env={**os.environ, "STATE": str(state), "PORT": url.rsplit(":", 1)[1]},
            capture_output=True, text=True, timeout=180,
        )
        assert started.returncode == 0, started.stderr
        project.build()
        runs = fit_runs(url)
        assert "RUNNING" not in {r.info.status for r in runs}
        assert len({r.info.run_name for r in runs if r.info.status == "FINISHED"}) == FITS


@pytest.mark.server
def test_a_server_that_flaps_for_two_seconds_costs_no_fit(project):
    project.set_grid(GRID)
    with server() as (url, state):
        relay = Relay(int(url.rsplit(":", 1)[1]))
        project.tracking_uri = f"http://127.0.0.1:{relay.port}"
        build = start_build(project)
        wait_for_fits(project, 3, build)
        relay.down()
        time.sleep(2)  # the blip itself
        relay.up()
        build.wait(timeout=600)

        assert build.returncode == 0, output(project)
        assert Counter(r.info.status for r in fit_runs(url)) == {"FINISHED": FITS}


def test_a_read_only_sqlite_store_stops_the_build_before_any_fit(project):
    import tracking

    tracking.prepare_store(project.tracking_uri, "iris-grid")
    project.store.chmod(0o444)
    immutable = os.geteuid() == 0  # root writes read-only files: make it immutable instead
    if immutable:
        subprocess.run(["chattr", "+i", str(project.store)], check=True)
    try:
        result = project.build(check=False)
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(project.store)], check=True)

    assert result.returncode != 0
    [line] = [line for line in (result.stdout + result.stderr).splitlines() if "mlflow_tracking_uri" in line]
    assert f"{project.store} is read-only; no fit was started" in line
    assert not (project.path / "products" / "fit").exists()
    assert project.fit_runs() == []


def test_a_disk_that_fills_up_mid_build_stops_it_with_one_line(project):
    if os.geteuid() != 0:
        pytest.skip("mounts a small tmpfs for the store: needs root")
    disk = project.path / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=130m", "tmpfs", str(disk)], check=True)
    try:
        project.store = disk / "mlflow.db"
        project.tracking_uri = f"sqlite:///{project.store}"
        project.set_grid(GRID)
        build = start_build(project)
        wait_for_fits(project, 3, build)
        # unbuffered, a MiB at a time, until the disk says it is full (what the
        # store frees meanwhile is taken too)
        with open(disk / "filler", "wb", buffering=0) as filler:
            with pytest.raises(OSError):
                while True:
                    filler.write(bytes(2**20))
        build.wait(timeout=120)
    finally:
        subprocess.run(["umount", "--lazy", str(disk)], check=True)

    assert build.returncode != 0
    assert "Traceback" not in output(project)
    last = output(project).strip().splitlines()[-1]
    assert last.startswith(f"The tracking store sqlite:///{project.store} could not be written from ")
    assert "fits done" in last and last.endswith("run the same command to resume.")
