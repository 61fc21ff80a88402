"""Successive halving: the schedule against scikit-learn's, a tracked build as MLflow shows it, resume, bad input."""
import json
import os
import signal
import subprocess
import sys

import pandas as pd
import pytest
import yaml
from sklearn.experimental import enable_halving_search_cv  # noqa: F401  (scikit-learn's own switch)
from sklearn.model_selection import HalvingGridSearchCV, StratifiedKFold
from sklearn.tree import DecisionTreeClassifier

import tracking
from sandbox import PLOOMBER, make_project
from tasks import data, grid, halving, models
from test_stopping import output, start_build, wait_for_fits

TREE = "sklearn.tree.DecisionTreeClassifier"
# 9 candidates of two entries, one of them sampled: three rungs at factor 3 (9, 3, 1)
ENTRIES = [
    {"model": TREE, "max_depth": [1, 2, 3], "min_samples_leaf": [1, 10]},
    {"model": TREE, "n_candidates": 3, "max_depth": "randint(1, 6)", "criterion": ["gini", "entropy"]},
]
HALVING = ("--env--halving", "true")
TRAINING_ROWS = 105  # of iris's 150, at test_size 0.3
RESOURCES = [30, 90, 105]  # exhaust: max(2 * 5 folds * 3 classes, 105 // 3**2), then x3, the last at every row
TAGS = ("search.rung", "search.candidate", "search.resource_value")


def halving_project(path, entries=ENTRIES):
    project = make_project(path)
    project.set_grid(entries)
    return project


def order(runs):
    """compare's order of fit runs: cv mean of accuracy, highest first, then its std, then the candidate."""
    return sorted(runs, key=lambda r: (-r.data.metrics["cv_accuracy_mean"], r.data.metrics["cv_accuracy_std"],
                                       r.data.tags["search.candidate"]))


def runs_by_rung(project, status="FINISHED"):
    by_rung = {}
    for run in project.fit_runs():
        if run.info.status != status:
            continue
        by_rung.setdefault(int(run.data.tags["search.rung"]), []).append(run)
    return by_rung


def survivors(project):
    """The candidates of each rung, as the build's fit runs show them."""
    return {rung: sorted(r.data.tags["search.candidate"] for r in runs) for rung, runs in runs_by_rung(project).items()}


@pytest.fixture(scope="module")
def halved(tmp_path_factory):
    project = halving_project(tmp_path_factory.mktemp("halved"))
    project.output = project.build(*HALVING)
    return project


# ------------------------------------------------------------ the schedule


@pytest.mark.parametrize("n_candidates, factor", [(9, 3), (8, 3), (10, 2), (27, 3), (5, 4), (2, 3)])
def test_the_schedule_is_scikit_learns_with_the_last_rung_on_the_full_resource(n_candidates, factor):
    search = HalvingGridSearchCV(
        DecisionTreeClassifier(random_state=0), {"max_depth": list(range(1, n_candidates + 1))}, factor=factor,
        cv=StratifiedKFold(5, shuffle=True, random_state=0), min_resources="exhaust",
    )
    X, y = load_training_split()
    search.fit(X, y)
    schedule = halving.Schedule(n_candidates, factor)
    resources = schedule.resources(max_resources=len(y), smallest=2 * 5 * 3)

    assert schedule.n_rungs == search.n_required_iterations_
    assert resources[0] == search.min_resources_
    assert [schedule.candidates_on(rung) for rung in range(search.n_iterations_)] == search.n_candidates_
    assert resources[:search.n_iterations_ - 1] == search.n_resources_[:-1]
    assert resources[-1] == len(y)  # scikit-learn's last rung may stop short of it
    assert len(resources) == schedule.n_rungs


def load_training_split():
    from sklearn.datasets import load_iris

    frame = load_iris(as_frame=True).frame.rename(columns={"target": data.TARGET})
    X_train, _, y_train, _ = models.split(frame, data.TARGET, 0.3, 42)
    return X_train, y_train


def test_the_dag_of_a_halving_search_is_known_at_load():
    first = grid.candidates(ENTRIES, seed=42, halving=True)
    places = grid.rungs(ENTRIES, seed=42, halving=True)

    assert len(first) == 9 and {halving.rung_of(spec) for spec in first} == {0}
    assert [spec["name"] for spec in places] == ["rung1-0", "rung1-1", "rung1-2", "rung2-0"]
    assert places[0]["after"] == [spec["name"] for spec in first]
    assert places[3]["after"] == ["rung1-0", "rung1-1", "rung1-2"]
    assert grid.rungs(ENTRIES, seed=42, halving=False) == []
    # without halving, the candidates of today's grid: same names, same specs
    assert [dict(spec) for spec in grid.candidates(ENTRIES[:1], seed=42)] == [
        {"name": f"DecisionTreeClassifier-max_depth={d}-min_samples_leaf={leaf}", "class": TREE,
         "params": {"max_depth": d, "min_samples_leaf": leaf}}
        for d in (1, 2, 3) for leaf in (1, 10)
    ]


# ------------------------------------------------------------ a tracked build, as MLflow shows it


def test_every_rung_is_a_run_with_its_tags_report_and_figure(halved):
    by_rung = runs_by_rung(halved)
    assert {rung: len(runs) for rung, runs in by_rung.items()} == {0: 9, 1: 3, 2: 1}
    for rung, runs in by_rung.items():
        for run in runs:
            assert run.info.status == "FINISHED"
            assert all(tag in run.data.tags for tag in TAGS)
            assert run.data.tags["search.resource_value"] == str(RESOURCES[rung])
            assert run.data.tags["mlflow.parentRunId"]
            assert {tracking.REPORT_ARTIFACT, tracking.CONFUSION_MATRIX_ARTIFACT} <= {a.path for a in halved.client().list_artifacts(run.info.run_id)}
    # each rung keeps the best third of the one before, in compare's order; a candidate keeps its name
    for rung in (1, 2):
        kept = [r.data.tags["search.candidate"] for r in order(by_rung[rung - 1])[:len(by_rung[rung])]]
        assert sorted(kept) == sorted(r.data.tags["search.candidate"] for r in by_rung[rung])


def test_only_the_last_rung_logs_a_model_and_compare_ranks_and_registers_it_alone(halved):
    client = halved.client()
    [last] = runs_by_rung(halved)[2]
    experiment = client.get_experiment_by_name("iris-grid").experiment_id
    assert {m.source_run_id for m in client.search_logged_models([experiment])} == {last.info.run_id}

    board = pd.read_csv(halved.path / "products" / "leaderboard.csv")
    assert list(board["run_id"]) == [last.info.run_id]
    assert client.get_model_version_by_alias("iris-classifier", "champion").run_id == last.info.run_id

    [compare] = client.search_runs([client.get_experiment_by_name("iris-grid-compare").experiment_id])
    rungs = survivors(halved)
    assert compare.data.params["search.rungs"] == "3"
    assert [compare.data.params[f"search.rung{r}.candidates"] for r in range(3)] == ["9", "3", "1"]
    assert [compare.data.params[f"search.rung{r}.resource"] for r in range(3)] == [str(r) for r in RESOURCES]
    for rung in (0, 1):
        assert sorted(compare.data.tags[f"search.rung{rung}.survivors"].split(", ")) == rungs[rung + 1]
    assert "search_rungs.json" in {a.path for a in client.list_artifacts(compare.info.run_id)}
    report = (halved.path / "products" / "compare.ipynb").read_text()
    assert "successive halving of 9 candidates in 3 rungs" in report


def test_status_shows_the_rungs_and_the_dag_orders_them(halved):
    status = subprocess.run([PLOOMBER, "status", *HALVING], cwd=halved.path, capture_output=True, text=True,
                            check=True, env={**os.environ, "COLUMNS": "1000"}).stdout
    assert all(f"fit-rung{name}" in status for name in ("1-0", "1-1", "1-2", "2-0"))
    assert "fit-rung0-DecisionTreeClassifier-max_depth=1-min_samples_leaf=1 " in status
    # every rung-1 place runs after every rung-0 fit, the last rung after every rung-1 place
    edges = subprocess.run([sys.executable, "-c", EDGES], cwd=halved.path, capture_output=True,
                           text=True, check=True).stdout
    upstream = json.loads(edges)
    rung0 = {name for name in upstream if name.startswith("fit-rung0-")}
    assert len(rung0) == 9
    assert all(set(upstream[f"fit-rung1-{slot}"]) == rung0 | {"features"} for slot in range(3))
    assert set(upstream["fit-rung2-0"]) == {"fit-rung1-0", "fit-rung1-1", "fit-rung1-2", "features"}


EDGES = """
import json, yaml
from ploomber.spec import DAGSpec
env = {**yaml.safe_load(open("env.yaml")), "halving": True}
dag = DAGSpec("pipeline.yaml", env=env).to_dag()
print(json.dumps({name: sorted(dag[name].upstream) for name in dag}))
"""


def test_a_no_op_rebuild_makes_no_run(halved):
    before = {r.info.run_id for r in halved.client().search_runs(
        [e.experiment_id for e in halved.client().search_experiments()])}
    again = halved.build(*HALVING)
    after = {r.info.run_id for r in halved.client().search_runs(
        [e.experiment_id for e in halved.client().search_experiments()])}
    assert after == before, again.stdout


def test_with_tracking_off_the_rungs_rank_from_the_records(tmp_path, halved):
    project = halving_project(tmp_path)
    project.build(*HALVING, track=False, store=False)

    assert not project.store.exists()
    records = [json.loads(p.read_text()) for p in (project.path / "products" / "fit").glob("*.run.json")]
    by_rung = {}
    for record in records:
        assert record["run_id"] is None
        by_rung.setdefault(halving.rung_of(record["candidate"]), []).append(halving.candidate_name(record["candidate"]))
    assert {rung: sorted(names) for rung, names in by_rung.items()} == survivors(halved)
    assert [r["final"] for r in records if halving.rung_of(r["candidate"]) == 2] == [True]
    assert "Tracking is off" in (project.path / "products" / "compare.ipynb").read_text()


def test_a_build_interrupted_mid_rung_resumes_with_the_same_survivors(tmp_path, halved):
    project = halving_project(tmp_path)
    build = start_build(project, *HALVING)
    wait_for_fits(project, 2, build, since=0.0, product="rung0-*.ipynb")
    os.killpg(build.pid, signal.SIGINT)  # Ctrl-C
    build.wait(timeout=60)
    assert build.returncode != 0, output(project)
    assert not list((project.path / "products" / "fit").glob("rung2-*.run.json")), "the build was not interrupted"

    project.build(*HALVING)

    assert survivors(project) == survivors(halved)
    statuses = {r.info.status for r in project.fit_runs()}
    assert statuses <= {"FINISHED", "FAILED", "KILLED"}, statuses  # none left RUNNING
    assert {rung: len(runs) for rung, runs in runs_by_rung(project).items()} == {0: 9, 1: 3, 2: 1}


# ------------------------------------------------------------ a parameter as the resource


def test_a_parameter_resource_sets_that_parameter_on_each_rung(tmp_path):
    project = halving_project(tmp_path, [{"model": "sklearn.ensemble.RandomForestClassifier", "max_depth": [2, 3, None]}])
    project.build(*HALVING, "--env--halving_resource", "n_estimators", "--env--halving_max_resources", "12")

    by_rung = runs_by_rung(project)
    assert {rung: len(runs) for rung, runs in by_rung.items()} == {0: 3, 1: 1}
    for rung, value in ((0, 4), (1, 12)):  # exhaust: 12 // 3
        assert {r.data.tags["search.resource_value"] for r in by_rung[rung]} == {str(value)}
        assert {r.data.params["n_estimators"] for r in by_rung[rung]} == {str(value)}
    # the configuration that trains the champion again, on other folds
    assert json.loads(by_rung[1][0].data.tags["model.params"])["n_estimators"] == 12


def test_halving_settings_are_in_env_yaml():
    from sandbox import ROOT

    env = yaml.safe_load((ROOT / "env.yaml").read_text())
    assert {key: env[key] for key in env if key.startswith("halving")} == {
        "halving": False, "halving_factor": 3, "halving_resource": "n_samples", "halving_min_resources": "exhaust",
        "halving_max_resources": None,
    }
