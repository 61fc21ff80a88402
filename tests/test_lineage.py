"""What every run of the project carries, and that none is left RUNNING by a process that died."""
import shutil
import subprocess
import sys

import tracking

ONE_FIT = [{"model": "sklearn.dummy.DummyClassifier", "strategy": "prior"}]

# Starts a run of each role, tagged as every run of the project is, then exits
# without ending them: a build killed mid-way (fit, compare, or the build's own run).
DIES_WITH_RUNS_OPEN = """
import os, sys, mlflow, tracking
uri = sys.argv[1]
for role, experiment in [("fit", "iris-grid"), ("compare", "iris-grid-compare"), ("build", "iris-grid")]:
    experiment_id = tracking.prepare_store(uri, experiment)
    mlflow.MlflowClient(uri).create_run(experiment_id, run_name=f"dead-{role}", tags=tracking.run_tags(role))
os._exit(0)
"""


def test_runs_left_running_by_a_dead_process_are_closed_by_the_next_build_whatever_their_role(project):
    subprocess.run([sys.executable, "-c", DIES_WITH_RUNS_OPEN, project.tracking_uri], cwd=project.path, check=True)
    project.set_grid(ONE_FIT)
    result = project.build()

    client = project.client()
    experiments = [client.get_experiment_by_name(n).experiment_id for n in ("iris-grid", "iris-grid-compare")]
    runs = client.search_runs(experiments)
    dead = {r.info.run_name: r.info.status for r in runs if r.info.run_name.startswith("dead-")}
    assert dead == {"dead-fit": "KILLED", "dead-compare": "KILLED", "dead-build": "KILLED"}
    assert "RUNNING" not in {r.info.status for r in runs}
    assert "Marked KILLED 3 run(s)" in result.stdout
    [compare] = [r for r in runs if r.data.tags[tracking.ROLE_TAG] == "compare" and r.info.status == "FINISHED"]
    assert compare.data.tags[tracking.PROCESS_TAG]  # so that a later build can close it


def test_a_folder_that_is_no_git_checkout_builds_without_the_source_tags(project):
    shutil.rmtree(project.path / ".git")
    project.set_grid(ONE_FIT)
    project.build()

    [run] = project.fit_runs()
    assert run.info.status == "FINISHED"
    assert "mlflow.source.git.commit" not in run.data.tags
    assert "git.dirty" not in run.data.tags


def test_a_machine_without_git_builds_without_the_source_tags(project, tmp_path):
    no_git = tmp_path / "bin"  # a PATH with Python's folder only
    no_git.mkdir()
    (no_git / "python").symlink_to(sys.executable)
    project.set_grid(ONE_FIT)
    project.build(env={"PATH": str(no_git)})

    [run] = project.fit_runs()
    assert run.info.status == "FINISHED"
    assert "mlflow.source.git.commit" not in run.data.tags
