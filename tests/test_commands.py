"""Ploomber's everyday commands, run on a built copy of the project as a user types them.

Ploomber has had no release since 2024-09: a newer release of one of its
dependencies that breaks a command fails here (networkx 3.6 broke `plot` and
`report`; pyproject.toml pins it).
"""
import os
import subprocess
import sys

import pandas as pd

import tracking
from sandbox import PLOOMBER

TASKS = ["get", "sepal", "petal", "features", "compare", "score"]
FIRST_FIT = "fit-RandomForestClassifier-n_estimators=10-criterion=gini"
OTHER_FIT = "fit-AdaBoostClassifier-n_estimators=20-learning_rate=1.0"


def ploomber(project, *args):
    result = subprocess.run([PLOOMBER, *args], cwd=project.path, capture_output=True, text=True)
    assert result.returncode == 0, f"ploomber {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result


def tracked(project):
    """The --env-- switches of the project's tracked builds."""
    return project.build_command()[2:]


def git(project, *args):
    return subprocess.run(["git", *args], cwd=project.path, capture_output=True, text=True, check=True).stdout


def fit_task_names(project):
    return [r.data.tags["ploomber.task"] for r in project.fit_runs()]


def test_status_says_every_task_is_up_to_date(built_project):
    table = ploomber(built_project, "status", *tracked(built_project)).stdout.splitlines()
    header = next(line for line in table if "Outdated?" in line)
    column = header.index("Outdated?")
    outdated = [line[column:].split()[0] for line in table if line[column:column + 5].strip() in {"True", "False"}]
    assert len(outdated) == len(TASKS) + 8
    assert set(outdated) == {"False"}
    assert {line.split()[0] for line in table if line.strip()} >= set(TASKS)


def test_plot_and_report_write_html_that_git_ignores(built_project):
    ploomber(built_project, "plot")
    plot = (built_project.path / "pipeline.html").read_text()
    for name in TASKS + [FIRST_FIT, OTHER_FIT]:
        assert f'"{name}"' in plot
    assert '<script src="https://d3js.org/' in plot  # what the README says about seeing it offline

    (built_project.path / "pipeline.html").unlink()
    ploomber(built_project, "report")
    assert FIRST_FIT in (built_project.path / "pipeline.html").read_text()
    assert git(built_project, "status", "--porcelain") == ""


def test_nb_inject_takes_the_first_fit_or_the_one_setup_cfg_names_and_remove_undoes_it(built_project):
    fit_script = built_project.path / "scripts" / "fit.py"
    injected = ploomber(built_project, "nb", "--inject")
    assert f"the parameters from {FIRST_FIT} will be injected" in injected.stderr
    assert "# Parameters" in fit_script.read_text() and f'"name": "{FIRST_FIT[4:]}"' in fit_script.read_text()
    assert len(git(built_project, "diff", "--name-only").split()) == 3  # fit, compare and score

    (built_project.path / "setup.cfg").write_text(f"[ploomber]\ninject-priority = {OTHER_FIT}\n")
    ploomber(built_project, "nb", "--remove")
    ploomber(built_project, "nb", "--inject")
    assert f'"name": "{OTHER_FIT[4:]}"' in fit_script.read_text()

    (built_project.path / "setup.cfg").unlink()
    ploomber(built_project, "nb", "--remove")
    assert git(built_project, "diff") == ""
    assert git(built_project, "status", "--porcelain") == ""


def test_task_force_reruns_one_fit_and_build_partially_stops_at_its_target(built_project):
    client = built_project.client()
    fits_before = fit_task_names(built_project)
    predictions = built_project.path / "products" / "predictions.csv"
    scored_at = predictions.stat().st_mtime_ns

    ploomber(built_project, "task", OTHER_FIT, "--force", *tracked(built_project))
    fits_after = fit_task_names(built_project)
    assert sorted(fits_after) == sorted(fits_before + [OTHER_FIT])
    # newest first
    rerun = next(r for r in built_project.fit_runs() if r.data.tags["ploomber.task"] == OTHER_FIT)
    assert rerun.info.status == "FINISHED"
    assert tracking.REPORT_ARTIFACT in {a.path for a in client.list_artifacts(rerun.info.run_id)}

    # compare is now older than that fit; --partially compare runs it, not score
    ploomber(built_project, "build", "--partially", "compare", *tracked(built_project))
    board = pd.read_csv(built_project.path / "products" / "leaderboard.csv")
    assert rerun.info.run_id in set(board["run_id"])
    assert len(board) == 8
    assert predictions.stat().st_mtime_ns == scored_at
    assert len(fit_task_names(built_project)) == len(fits_after)


def test_a_fit_run_by_hand_with_tracking_off_is_fit_again_by_the_next_tracked_build(built_project):
    """As a user edits fit.py: `nb --inject`, Run All in Jupyter with env.yaml's
    track: false (which writes the first fit's products), `nb --remove`."""
    runs_before = {r.info.run_id for r in built_project.fit_runs()}
    ploomber(built_project, "nb", "--inject")
    try:
        # the kernel's way: scripts/ as the working folder, the project importable
        ran = subprocess.run(
            [sys.executable, "fit.py"], cwd=built_project.path / "scripts",
            env={**os.environ, "PYTHONPATH": str(built_project.path)}, capture_output=True, text=True,
        )
        assert ran.returncode == 0, ran.stderr
        assert "(tracking off)" in ran.stdout
    finally:
        ploomber(built_project, "nb", "--remove")

    built_project.build()
    [new] = [r for r in built_project.fit_runs() if r.info.run_id not in runs_before]
    assert new.data.tags["ploomber.task"] == FIRST_FIT and new.info.status == "FINISHED"
    board = pd.read_csv(built_project.path / "products" / "leaderboard.csv")
    assert len(board) == 8 and new.info.run_id in set(board["run_id"])
    assert git(built_project, "status", "--porcelain") == ""
