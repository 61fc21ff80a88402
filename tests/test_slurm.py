"""The grid on a one-node SLURM cluster: soopervisor submits each task as an sbatch job,
every job signed in to deploy/server as its builder through the environment sbatch hands on.

Needs SLURM and MUNGE (deploy/slurm/install) and root. Skipped when slurmctld
is not installed, except in CI (CI=true), where that fails the test.
"""
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import psutil
import pytest
from mlflow.tracking import MlflowClient

import tracking
from deployed import files_holding, passwords, server
from sandbox import ROOT, free_ports, require
from tasks import models

pytestmark = pytest.mark.slurm

DEPLOY = ROOT / "deploy" / "slurm"
# the soopervisor target: not among sandbox.PROJECT_FILES
TARGET_FILES = ["soopervisor.yaml", "env.cluster.yaml", "cluster"]
VENV = Path(sys.executable).parent.parent
JOBS_TIMEOUT = 360  # seconds for every job of the grid to finish
# Two light fits, one per CPU of the node: what is tested is the cluster's
# way of running a grid (a job per task, their order, one build in MLflow),
# and each job pays Python's and Ploomber's start-up of its own (8 to 13 s here).
GRID = [{"model": "sklearn.tree.DecisionTreeClassifier", "max_depth": [2, 3]}]
FITS = 2


def slurm_installed():
    return bool(shutil.which("slurmctld") or Path("/usr/sbin/slurmctld").exists())


@pytest.fixture
def slurm(tmp_path_factory):
    """A one-node cluster from deploy/slurm/start, in a state folder of its own; yields SLURM_CONF."""
    require("SLURM (slurmctld)", slurm_installed(), "deploy/slurm/install")
    state = tmp_path_factory.mktemp("slurm")  # short: munged's socket path must fit in 108 bytes
    ctld_port, d_port = free_ports(2)
    env = {**os.environ, "STATE": str(state), "SLURMCTLD_PORT": str(ctld_port), "SLURMD_PORT": str(d_port)}
    try:
        started = subprocess.run([DEPLOY / "start"], env=env, capture_output=True, text=True, timeout=120)
        if started.returncode != 0:
            logs = "".join(f"\n--- {log}\n{log.read_text()[-3000:]}" for log in sorted(state.glob("*.log")))
            raise RuntimeError(f"deploy/slurm/start failed:\n{started.stdout}{started.stderr}{logs}")
        yield state / "slurm.conf"
    finally:
        subprocess.run([DEPLOY / "stop"], env=env, timeout=180)
        left = cluster_processes(state)
        assert not left, f"deploy/slurm/stop left {left}"


def cluster_processes(state):
    """The daemons and job processes of the cluster in `state` that still run."""
    conf = str(state / "slurm.conf")  # in the environment of each, from deploy/slurm/start or sbatch
    left = []
    for process in psutil.process_iter(["pid", "name", "cmdline"]):
        try:
            cmdline = " ".join(process.info["cmdline"] or [])
            environ = process.environ()
        except (psutil.AccessDenied, psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
        if str(state) in cmdline or environ.get("SLURM_CONF") == conf:
            left.append(f"{process.info['pid']} {process.info['name']}")
    return left


def slurm_command(conf, *args):
    return subprocess.run(args, env={**os.environ, "SLURM_CONF": str(conf)}, capture_output=True, text=True)


def finished_jobs(conf):
    """One dict per finished job, from the controller's job completion log (there is no sacct)."""
    log = Path(conf).parent / "jobcomp.log"
    lines = log.read_text().splitlines() if log.exists() else []
    return [dict(re.findall(r"(\w+)=(\S*)", line)) for line in lines]


@pytest.fixture
def deployed_server():
    with server() as (url, state):
        yield url, state


def job_logs(project):
    return "".join(f"\n--- {log.name}\n{log.read_text()[-2000:]}" for log in sorted(project.glob("cluster/logs/*.out")))


def run_on_slurm(slurm, project, url, env_file="env.cluster.yaml", secrets=()):
    """`soopervisor export cluster` of `project`, then every job to its end, each COMPLETED and started
    after its upstream jobs ended; returns {task name: the job's record}. No `secrets` in what the export prints."""
    for name in TARGET_FILES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, project.path / name, ignore=shutil.ignore_patterns("*.out"))
        elif not (project.path / name).exists():
            shutil.copy(source, project.path / name)
    # where cluster/template.sh finds ploomber: the project's venv
    (project.path / ".venv").symlink_to(VENV)

    exported = subprocess.run(
        [VENV / "bin" / "soopervisor", "export", "cluster"],
        cwd=project.path,
        env={
            **os.environ, "SLURM_CONF": str(slurm),
            "PLOOMBER_ENV_FILENAME": env_file, "MLFLOW_TRACKING_URI": url,
        },
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert exported.returncode == 0, exported.stdout + exported.stderr
    assert not [secret for secret in secrets if secret in exported.stdout + exported.stderr]
    submitted = re.findall(r"^#SBATCH --job-name=(\S+)$", exported.stdout, flags=re.MULTILINE)
    assert {"get", "features", "compare"} <= set(submitted)
    assert exported.stdout.count("Running command: sbatch --dependency=afterok:") == len(submitted) - 1

    # every job leaves the queue and is logged as finished
    deadline = time.monotonic() + JOBS_TIMEOUT
    while (queue := slurm_command(slurm, "squeue", "-h", "-o", "%i %j %T %r").stdout.strip()) or (
        len(finished_jobs(slurm)) < len(submitted)
    ):
        assert time.monotonic() < deadline, f"after {JOBS_TIMEOUT} s, still queued:\n{queue}{job_logs(project.path)}"
        time.sleep(2)

    # one job per task, each COMPLETED, each started after its upstream jobs ended
    jobs = {job["Name"]: job for job in finished_jobs(slurm)}
    assert sorted(jobs) == sorted(submitted), job_logs(project.path)
    failed = {name: job["JobState"] for name, job in jobs.items() if job["JobState"] != "COMPLETED"}
    assert not failed, f"{failed}{job_logs(project.path)}"
    assert len({job["JobId"] for job in jobs.values()}) == len(submitted)
    fits = [name for name in jobs if name.startswith("fit-")]
    assert all(jobs[fit]["StartTime"] >= jobs["features"]["EndTime"] for fit in fits)
    assert all(jobs["compare"]["StartTime"] >= jobs[fit]["EndTime"] for fit in fits)
    for name, job in jobs.items():
        log = project.path / "cluster" / "logs" / f"{name}.{job['JobId']}.out"
        assert f"'{name}' task executed successfully!" in log.read_text()
        assert "Marked KILLED" not in log.read_text()  # no job's preflight closed another's run
    return jobs


def test_the_grid_runs_as_one_sbatch_job_per_task(slurm, project, deployed_server):
    url, state = deployed_server
    project.set_grid(GRID)
    jobs = run_on_slurm(slurm, project, url, secrets=passwords(state))
    fits = [name for name in jobs if name.startswith("fit-")]
    assert len(fits) == FITS

    client = MlflowClient(url)
    experiment = client.get_experiment_by_name("iris-grid")
    runs = client.search_runs([experiment.experiment_id], filter_string="tags.`grid.role` = 'fit'")
    assert sorted(r.info.status for r in runs) == ["FINISHED"] * FITS
    assert sorted(r.data.tags["ploomber.task"] for r in runs) == sorted(fits)
    for run in runs:
        assert set(run.data.metrics) == {*models.METRICS, *models.CV_METRICS}
        artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
        assert tracking.REPORT_ARTIFACT in artifacts
        assert client.search_logged_models(
            [experiment.experiment_id], filter_string=f"source_run_id = '{run.info.run_id}'"
        )
    # each fit in a process of its own: its job's
    assert len({r.data.tags[tracking.PROCESS_TAG] for r in runs}) == FITS
    # yet one build: every fit a child of one parent run, which the last job closed
    [parent] = client.search_runs([experiment.experiment_id], filter_string="tags.`grid.role` = 'build'")
    assert {r.data.tags["mlflow.parentRunId"] for r in runs} == {parent.info.run_id}
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["champion.decision"] == "first champion"

    board = pd.read_csv(project.path / "products" / "leaderboard.csv")
    assert sorted(board["run_id"]) == sorted(r.info.run_id for r in runs)

    # the builder's password: in no job's log, product or soopervisor file
    assert not files_holding(project.path, passwords(state))


def test_a_halving_search_runs_its_rungs_as_jobs_in_order(slurm, project, deployed_server):
    url, _ = deployed_server
    # three candidates at factor 3: rung 0 fits the three, rung 1 the best on every row
    project.set_grid([{"model": "sklearn.tree.DecisionTreeClassifier", "max_depth": [1, 2, 3]}])
    shutil.copy(ROOT / "env.cluster.yaml", project.path / "env.cluster.yaml")
    with open(project.path / "env.cluster.yaml", "a") as env:
        env.write("halving: true\n")
    jobs = run_on_slurm(slurm, project, url)

    rung0 = [name for name in jobs if name.startswith("fit-rung0-")]
    assert len(rung0) == 3 and "fit-rung1-0" in jobs
    assert all(jobs["fit-rung1-0"]["StartTime"] >= jobs[name]["EndTime"] for name in rung0)
    client = MlflowClient(url)
    experiment = client.get_experiment_by_name("iris-grid")
    runs = client.search_runs([experiment.experiment_id], filter_string="tags.`grid.role` = 'fit'")
    assert sorted((r.data.tags["search.rung"], r.info.status) for r in runs) == [("0", "FINISHED")] * 3 + [
        ("1", "FINISHED")]
    [last] = [r for r in runs if r.data.tags["search.rung"] == "1"]
    board = pd.read_csv(project.path / "products" / "leaderboard.csv")
    assert list(board["run_id"]) == [last.info.run_id]
    [parent] = client.search_runs([experiment.experiment_id], filter_string="tags.`grid.role` = 'build'")
    assert {r.data.tags["mlflow.parentRunId"] for r in runs} == {parent.info.run_id}
    assert parent.info.status == "FINISHED"
