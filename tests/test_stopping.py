"""Stopping a build: Ctrl-C, SIGTERM, SIGKILL, and a second build in the same folder.

Each build runs in a session of its own, with SIGINT handled by default, as
in a terminal (a background job of a non-interactive shell ignores SIGINT, so
starting it that way would prove nothing). Ctrl-C is SIGINT to the whole
process group, as a terminal sends it; SIGTERM goes to the main process
alone, as a supervisor (docker stop, systemd, scancel) sends it.
"""
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections import Counter

import psutil

from sandbox import PLOOMBER

# 24 fits of a fifth of a second: the interrupts land mid-grid (after three
# fits, with more ending while the test looks), and resuming stays short
GRID = [
    {
        "model": "sklearn.ensemble.RandomForestClassifier",
        "n_estimators": [5, 10, 15, 20, 25, 30],
        "criterion": ["gini", "entropy"],
        "max_depth": [2, None],
    }
]
FITS = 24
# two fits that would train for minutes: a build that is still running when it is looked at
SLOW = {
    "model": "sklearn.neural_network.MLPClassifier",
    "max_iter": [1_000_000], "tol": [0.0], "n_iter_no_change": [1_000_000], "alpha": [0.0001, 0.001],
}
# issue 11 asks for 5 s; the rest is headroom for a machine shared with other builds
STOP_SECONDS = 8
WORKER_KILLED = "Build stopped: a worker process was killed (by the OOM killer, or a signal sent to it alone): "


def start_build(project, *args, log_name="build.log"):
    log = open(project.path / log_name, "w")
    return subprocess.Popen(
        project.build_command(*args), cwd=project.path, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def wait_for_fits(project, count, build, since=0.0, timeout=600, product="*.ipynb"):
    """Until `count` fit products were written after `since` (an epoch time):
    notebooks when fits end, records of the run ids (*.run.json) when they start."""
    deadline = time.monotonic() + timeout
    while True:
        written = [p for p in (project.path / "products" / "fit").glob(product) if p.stat().st_mtime > since]
        if len(written) >= count:
            return
        assert build.poll() is None, f"the build ended before {count} fits:\n{output(project)}"
        assert time.monotonic() < deadline, "no progress"
        time.sleep(0.1)


def seconds_to_exit(build, send):
    sent = time.monotonic()
    send()
    build.wait(timeout=120)
    return time.monotonic() - sent


def output(project, log_name="build.log"):
    return (project.path / log_name).read_text()


def last_line(project):
    return output(project).strip().splitlines()[-1]


def both_slow_fits_running(project):
    """A build whose two workers each run one of SLOW's fits; returns it and its workers."""
    project.set_grid([SLOW])
    build = start_build(project)
    wait_for_fits(project, 2, build, product="*.run.json")
    return build, psutil.Process(build.pid).children()


def by_status(project):
    return Counter(r.info.status for r in project.fit_runs())


def test_ctrl_c_and_sigterm_stop_the_build_at_once_and_the_same_command_resumes(project):
    project.set_grid(GRID)
    senders = {
        "SIGINT": lambda build: os.killpg(build.pid, signal.SIGINT),  # Ctrl-C: the whole foreground group
        "SIGTERM": lambda build: os.kill(build.pid, signal.SIGTERM),  # a supervisor: the main process alone
    }
    # a stop while the build starts, as it creates the fresh store: one line,
    # and the store is whole for the builds below
    for name, send in senders.items():
        build = start_build(project)
        while "MLflow runs go to" not in output(project):
            assert build.poll() is None, output(project)
            time.sleep(0.05)
        send(build)
        build.wait(timeout=60)
        assert build.returncode != 0
        assert last_line(project).startswith(f"Interrupted by {name} before any task ran. ")
        assert "Traceback" not in output(project)
        assert not (project.path / "products" / "fit").exists()

    for name, send in senders.items():
        started = time.time()
        build = start_build(project)
        wait_for_fits(project, 3, build, since=started)
        workers = psutil.Process(build.pid).children()

        elapsed = seconds_to_exit(build, lambda: send(build))
        print(f"{name}: {elapsed:.2f} s from the signal to the exit")

        assert build.returncode != 0
        assert elapsed < STOP_SECONDS
        lines = output(project).strip().splitlines()
        assert lines[-1].startswith(f"Build interrupted by {name}: ")
        assert "Run the same command to resume" in lines[-1]
        assert sum("interrupted" in line.lower() for line in lines) == 1
        assert "Traceback" not in output(project)
        assert not [w.pid for w in workers if w.is_running() and w.status() != psutil.STATUS_ZOMBIE]
        statuses = by_status(project)
        assert set(statuses) <= {"FINISHED", "FAILED"}, statuses  # nothing left RUNNING
        assert statuses["FINISHED"] < FITS  # it stopped mid-grid

    finished = {r.info.run_name: r.info.run_id for r in project.fit_runs() if r.info.status == "FINISHED"}
    project.build()
    runs = project.fit_runs()
    whole = {r.info.run_name: r.info.run_id for r in runs if r.info.status == "FINISHED"}
    assert len(whole) == FITS
    assert "RUNNING" not in by_status(project)
    # only what did not finish ran again
    assert all(whole[name] == run_id for name, run_id in finished.items())
    assert sum(r.info.status == "FINISHED" for r in runs) == FITS
    assert (project.path / "products" / "predictions.csv").exists()


# Python runs its at-fork hooks in the parent after each fork (logging
# registers one), and drops a KeyboardInterrupt raised inside one. This
# at-fork hook has the Ctrl-C land there, as the helper that creates the store forks.
CTRL_C_AS_THE_HELPER_FORKS = """
import os, signal, sys, time
from runner import interrupts, warm_up

def ctrl_c_in_an_at_fork_hook():
    try:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(1)
    except KeyboardInterrupt:
        print("interrupted in the at-fork hook", flush=True)
        raise

interrupts.handle()
os.register_at_fork(after_in_parent=ctrl_c_in_an_at_fork_hook)
warm_up.warm_up_workers((sys.argv[1], "iris-grid"))
print("the warm-up went on")
"""


def test_a_ctrl_c_python_drops_at_a_fork_still_stops_preflight_and_leaves_the_store_whole(project):
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(CTRL_C_AS_THE_HELPER_FORKS), project.tracking_uri],
        cwd=project.path, capture_output=True, text=True, timeout=120,
    )
    assert "interrupted in the at-fork hook" in result.stdout
    assert "the warm-up went on" not in result.stdout
    assert "Traceback" not in result.stderr and "Exception ignored" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("Interrupted by SIGINT before any task ran. ")
    # the helper finished the store before the process stopped
    assert project.client().get_experiment_by_name("iris-grid") is not None


def test_one_build_per_folder_and_a_killed_one_leaves_no_worker_and_no_lock(project, tmp_path):
    project.set_grid([SLOW, *GRID])
    first = start_build(project)
    wait_for_fits(project, 2, first, product="*.run.json")  # both workers busy with SLOW

    # another store, so that touching any store would show
    other_store = tmp_path / "other" / "mlflow.db"
    other_store.parent.mkdir()
    refused_at = time.monotonic()
    second = project.build("--env--mlflow_tracking_uri", f"sqlite:///{other_store}", check=False)
    refused_in = time.monotonic() - refused_at
    assert second.returncode != 0
    [line] = [line for line in (second.stdout + second.stderr).splitlines() if "Another build" in line]
    assert f"pid {first.pid} on {socket.gethostname()}, started " in line
    assert not other_store.exists()
    assert f"pid={first.pid}" in (project.path / ".build.lock").read_text()

    status = subprocess.run([PLOOMBER, "status"], cwd=project.path, capture_output=True, text=True)
    assert status.returncode == 0, status.stderr
    assert first.poll() is None, "the first build ended before the others were checked"
    print(f"second build refused in {refused_in:.1f} s")

    # the OOM killer, say: the main process alone, at once
    workers = psutil.Process(first.pid).children()
    assert workers
    os.kill(first.pid, signal.SIGKILL)
    killed_at = time.monotonic()
    gone, alive = psutil.wait_procs(workers, timeout=10)
    assert not alive, f"workers outlived their build: {[w.pid for w in alive]}"
    print(f"workers exited {time.monotonic() - killed_at:.1f} s after their build was killed")

    project.set_grid(GRID)
    project.build()  # takes the lock of the dead build, closes its runs
    statuses = by_status(project)
    assert "RUNNING" not in statuses
    assert len({r.info.run_name for r in project.fit_runs() if r.info.status == "FINISHED"}) == FITS



def test_a_worker_killed_alone_stops_the_build_with_one_line_and_leaves_no_fold_process(project):
    project.set_grid([{**SLOW, "alpha": [0.0001]}])  # one fit: the other worker lends its core to its folds
    build = start_build(project)
    wait_for_fits(project, 1, build, product="*.run.json")
    deadline = time.monotonic() + 120
    folds = []
    while not folds:  # a fold of the fit, in a process of its own (runner/folds.py)
        assert build.poll() is None and time.monotonic() < deadline, output(project)
        folds = [fold for worker in psutil.Process(build.pid).children() for fold in worker.children()]
        time.sleep(0.1)

    fit_worker = folds[0].parent()
    fit_worker.kill()  # the OOM killer, say, picks the worker
    gone, alive = psutil.wait_procs(folds, timeout=5)
    assert not alive, "a fold process outlived the fit it worked for"
    build.wait(timeout=60)
    assert build.returncode != 0
    assert last_line(project).startswith(
        WORKER_KILLED + "0 fits done, 1 failed, 0 not started. Run the same command to resume"
    )
    assert "Traceback" not in output(project)
    assert [r.info.status for r in project.fit_runs()] == ["KILLED"]  # closed by the build, not left RUNNING


def test_a_worker_killed_alone_while_the_other_fits_stops_both_fits_and_leaves_no_run_running(project):
    build, workers = both_slow_fits_running(project)
    assert len(workers) == 2
    workers[0].kill()
    assert seconds_to_exit(build, lambda: None) < STOP_SECONDS, output(project)
    assert build.returncode != 0
    assert last_line(project).startswith(WORKER_KILLED + "0 fits done, 2 failed, 0 not started.")
    gone, alive = psutil.wait_procs(workers[1:], timeout=5)
    assert not alive, "the other worker outlived its build"
    # the other fit closed its run; the build closed the killed worker's
    assert sorted(r.info.status for r in project.fit_runs()) == ["FAILED", "KILLED"]


def test_a_second_ctrl_c_kills_the_workers_and_the_build_still_leaves_no_run_running(project):
    build, workers = both_slow_fits_running(project)

    def twice():
        os.killpg(build.pid, signal.SIGINT)
        time.sleep(0.05)
        os.killpg(build.pid, signal.SIGINT)

    assert seconds_to_exit(build, twice) < STOP_SECONDS, output(project)
    assert last_line(project).startswith("Build interrupted by SIGINT: 0 fits done, 2 failed, 0 not started.")
    gone, alive = psutil.wait_procs(workers, timeout=5)
    assert not alive
    statuses = by_status(project)
    assert sum(statuses.values()) == 2 and set(statuses) <= {"FAILED", "KILLED"}, statuses
