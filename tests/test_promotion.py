"""The champion moves only when beaten, every move is recorded and can be undone (bin/champion),
and a build is one row: a parent run holding its fits.

One project, built again and again (module fixture `builds`):
  dummy   a dummy-only grid: the first champion
  default the default grid: beats it, the champion moves
  again   rolled back to the first, then the default grid with another min_improvement
          (only compare runs): its best, which has a version, is promoted again
  back    a dummy-only grid again, one fit reused: the champion stays
  split   that grid with another test_size: the champion is re-evaluated on the new folds, and stays
  noop    the same again: nothing to do
  target  the target column renamed: the two cannot be compared, and the challenger wins
"""
import json
import subprocess
from dataclasses import dataclass

import pytest

import tracking
from sandbox import ROOT, make_project

MODEL_NAME = "iris-classifier"
# appended to the project's tasks/data.py: the same flowers, another target column
RENAMED_TARGET = '''

TARGET = "species"
_load_with_target = load


def load():
    return _load_with_target().rename(columns={"target": TARGET})
'''
DUMMY_GRID = [{"model": "sklearn.dummy.DummyClassifier", "strategy": ["most_frequent", "uniform"]}]
# most_frequent's fit is reused from the first build; prior is a new one
OTHER_DUMMY_GRID = [{"model": "sklearn.dummy.DummyClassifier", "strategy": ["most_frequent", "prior"]}]


@dataclass
class Step:
    compare: object  # compare's run of the build
    champion: str  # the version @champion after the build
    run_ids: set  # every run id of the store after the build
    output: str  # what the build printed
    chart_alt: list  # the alt text of each image in compare's report (products/compare.ipynb)
    version: object  # the champion's ModelVersion, as the build left it


def all_runs(client):
    return [r for e in client.search_experiments() for r in client.search_runs([e.experiment_id])]


def runs_with_role(client, role):
    return [r for r in all_runs(client) if r.data.tags.get(tracking.ROLE_TAG) == role]


@pytest.fixture(scope="module")
def builds(tmp_path_factory):
    project = make_project(tmp_path_factory.mktemp("promotion"))
    default_grid = project.grid()
    steps = {}

    def build(name, grid, *args):
        project.set_grid(grid)
        output = project.build(*args).stdout
        client = project.client()
        [compare] = [r for r in runs_with_role(client, "compare") if r.info.run_id not in seen(steps)]
        champion = client.get_model_version_by_alias(MODEL_NAME, tracking.CHAMPION_ALIAS).version
        steps[name] = Step(compare, str(champion), {r.info.run_id for r in all_runs(client)}, output,
                           image_alt_texts(project.path / "products" / "compare.ipynb"),
                           client.get_model_version(MODEL_NAME, champion))

    def seen(steps):
        return set().union(*(s.run_ids for s in steps.values())) if steps else set()

    build("dummy", DUMMY_GRID)
    build("default", default_grid)
    assert champion_command(project, "rollback").returncode == 0
    build("again", default_grid, "--env--min_improvement", "0.001")
    build("back", OTHER_DUMMY_GRID)
    build("split", OTHER_DUMMY_GRID, "--env--test_size", "0.4")
    project.build("--env--test_size", "0.4")
    project.after_noop = {r.info.run_id for r in all_runs(project.client())}
    with open(project.path / "tasks" / "data.py", "a") as data_py:
        data_py.write(RENAMED_TARGET)
    build("target", OTHER_DUMMY_GRID, "--env--test_size", "0.4")
    project.steps = steps
    return project


def image_alt_texts(notebook):
    outputs = [o for cell in json.loads(notebook.read_text())["cells"] for o in cell.get("outputs", [])]
    return [o["metadata"].get("image/png", o["metadata"]).get("alt") for o in outputs if "image/png" in o.get("data", {})]


def test_each_builds_chart_labels_its_best_run_with_what_the_champions_rule_decided(builds):
    expected = {"dummy": "first champion", "default": "promoted to champion", "again": "promoted to champion",
                "back": "challenger, the champion kept", "split": "challenger, the champion kept",
                "target": "promoted to champion"}
    for name, label in expected.items():
        step = builds.steps[name]
        best = step.compare.data.tags["champion.challenger"].split(":")[0]
        assert step.chart_alt == [f"leaderboard of {step.compare.data.params['fits']} runs by cv_accuracy_mean; "
                                  f"best, {best}: {label}"], name


def leaderboard_of(project, run):
    import mlflow

    mlflow.set_tracking_uri(project.tracking_uri)  # load_table searches the runs of the global store
    return project.client().load_table(run.info.experiment_id, tracking.LEADERBOARD_TABLE, run_ids=[run.info.run_id])


def champion_command(project, *args):
    return subprocess.run(
        [ROOT / "bin" / "champion", "--env--mlflow_tracking_uri", project.tracking_uri, *args],
        cwd=project.path, capture_output=True, text=True,
    )


def alias(project):
    return str(project.client().get_model_version_by_alias(MODEL_NAME, tracking.CHAMPION_ALIAS).version)


def test_a_better_grid_takes_the_alias_and_its_version_names_the_one_it_replaced(builds):
    dummy, default = builds.steps["dummy"], builds.steps["default"]
    assert dummy.compare.data.tags["champion.decision"] == "first champion"
    assert default.compare.data.tags["champion.decision"] == "promoted"
    assert default.champion != dummy.champion

    version = default.version  # its record before it was promoted again
    assert version.tags["promotion.replaced"] == dummy.champion
    assert f"replaced version {dummy.champion}" in version.description
    fit = builds.client().get_run(version.run_id)
    mean, std = fit.data.metrics["cv_accuracy_mean"], fit.data.metrics["cv_accuracy_std"]
    assert f"{mean:.4f} ± {std:.4f}" in version.description
    assert version.tags["promotion.build"] == fit.data.tags["mlflow.parentRunId"]
    assert version.tags["promotion.commit"] == fit.data.tags["mlflow.source.git.commit"]
    assert "beats the champion's" in version.tags["promotion.rule"]
    assert version.tags["promotion.champion"]  # the champion's scores it beat


def test_a_version_promoted_again_holds_the_record_of_its_latest_promotion(builds):
    client = builds.client()
    default, again = builds.steps["default"], builds.steps["again"]
    assert again.compare.data.tags["champion.decision"] == "promoted"
    assert again.champion == default.champion  # the same run, so the same version, no new one
    rule = again.compare.data.tags["champion.rule"]
    assert "min_improvement 0.001" in rule

    version = client.get_model_version(MODEL_NAME, again.champion)
    history = client.get_registered_model(MODEL_NAME).tags
    [latest] = [json.loads(history[key]) for key in sorted(history) if key.startswith("champion.history.")][3:4]
    assert (latest["version"], latest["why"]) == (again.champion, f"promoted: {rule}")
    assert version.tags["promotion.rule"] == rule
    assert version.tags["promotion.replaced"] == latest["replaced"] == builds.steps["dummy"].champion
    assert version.description.endswith(f"Rule: {rule}.")
    assert f"replaced version {latest['replaced']}" in version.description
    # no fit ran, so no build run promoted it this time
    first_build = client.get_run(version.run_id).data.tags["mlflow.parentRunId"]
    assert version.tags["promotion.build"] == "" and first_build not in version.description


def test_a_worse_grid_leaves_the_champion_and_the_record_says_kept_with_both_scores(builds):
    default, back = builds.steps["default"], builds.steps["back"]
    assert back.champion == default.champion
    tags = back.compare.data.tags
    assert tags["champion.decision"] == "kept"
    assert tags["champion.challenger"].startswith("DummyClassifier") and "±" in tags["champion.challenger"]
    assert "±" in tags["champion.incumbent"] and "held-out" in tags["champion.incumbent"]
    assert "logged scores" in tags["champion.rule"]
    # only a promoted challenger becomes a registered version
    registered = {v.run_id for v in builds.client().search_model_versions(f"name = '{MODEL_NAME}'")}
    assert len(registered) == 3 and tags["champion.run_id"] not in registered


def test_a_renamed_target_cannot_be_compared_and_the_challenger_wins_saying_why(builds):
    target = builds.steps["target"]
    assert target.compare.data.tags["champion.decision"] == "promoted"
    assert target.champion != builds.steps["split"].champion
    rule = builds.client().get_model_version(MODEL_NAME, target.champion).tags["promotion.rule"]
    assert rule == "the champion cannot be compared: the target changed (target -> species)"


def test_another_test_size_re_evaluates_the_champion_on_the_new_folds_first(builds):
    client = builds.client()
    split = builds.steps["split"]
    [evaluation] = [r for r in runs_with_role(client, "evaluation")]
    champion_run = client.get_model_version(MODEL_NAME, builds.steps["back"].champion).run_id
    assert evaluation.data.tags["evaluated.run_id"] == champion_run
    assert evaluation.data.params["split.test_size"] == "0.4"
    assert evaluation.info.end_time <= split.compare.info.end_time
    assert evaluation.info.run_id in split.compare.data.tags["champion.rule"]
    # a run of this build: a child of its parent, beside its fits
    parent = evaluation.data.tags["mlflow.parentRunId"]
    assert client.get_run(parent).data.tags[tracking.ROLE_TAG] == "build"
    assert split.compare.data.tags["champion.decision"] == "kept"
    assert f"{evaluation.data.metrics['cv_accuracy_mean']:.4f}" in split.compare.data.tags["champion.incumbent"]


def test_every_fit_has_its_builds_parent_and_a_no_op_rebuild_makes_no_run(builds):
    client = builds.client()
    fits = runs_with_role(client, "fit")
    parents = {r.info.run_id: r for r in runs_with_role(client, "build") if r.info.run_id in builds.steps["split"].run_ids}
    fits = [f for f in fits if f.info.run_id in builds.steps["split"].run_ids]  # before the target changed
    assert len(fits) == 2 + 8 + 1 + 2
    for fit in fits:
        parent = parents[fit.data.tags["mlflow.parentRunId"]]
        assert parent.info.experiment_id == fit.info.experiment_id
        assert parent.info.status == "FINISHED"
    # one parent per build, each of its own
    assert len(parents) == 4
    assert len({f.data.tags["mlflow.parentRunId"] for f in fits}) == 4
    # back ranked the most_frequent run of the first build, which stays that build's child
    back_parent = next(p for p in parents.values() if p.data.tags["compare.run_id"] == builds.steps["back"].compare.info.run_id)
    board = leaderboard_of(builds, back_parent)
    [reused] = [client.get_run(run_id) for run_id in board["run_id"] if run_id in builds.steps["dummy"].run_ids]
    assert len(board) == 2
    assert reused.data.tags["mlflow.parentRunId"] != back_parent.info.run_id
    assert builds.after_noop == builds.steps["split"].run_ids


def test_the_parent_holds_the_grid_the_leaderboard_and_the_decision(builds):
    client = builds.client()
    default = builds.steps["default"]
    [parent] = [r for r in runs_with_role(client, "build") if r.data.tags["compare.run_id"] == default.compare.info.run_id]
    assert parent.data.params["grid"] == "AdaBoostClassifier x4, RandomForestClassifier x4"
    assert parent.data.tags["champion.decision"] == "promoted"
    board = leaderboard_of(builds, parent)
    children = {f.info.run_id for f in runs_with_role(client, "fit") if f.data.tags["mlflow.parentRunId"] == parent.info.run_id}
    assert set(board["run_id"]) == children


def test_a_tracked_build_ends_with_the_top_five_the_champion_and_how_to_browse(builds):
    default = builds.steps["default"]
    lines = default.output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Leaderboard, top 5 of 8"))
    board = leaderboard_of(builds, default.compare)
    for place, (line, name) in enumerate(zip(lines[start + 1:start + 6], board["run_name"]), 1):
        assert line.strip().startswith(f"{place}. {name}  ")
    champion, dummy = default.champion, builds.steps["dummy"].champion
    assert lines[start + 6].startswith(f"Champion: {MODEL_NAME}@champion is version {champion}, was version {dummy} (promoted")
    assert lines[start + 7] == f"Browse the runs: .venv/bin/mlflow ui --backend-store-uri {builds.tracking_uri} --host 127.0.0.1"
    assert start + 7 == len(lines) - 1, "the build's last line, after Ploomber's table of tasks"


def test_rollback_and_set_move_the_alias_and_refuse_what_cannot_be(builds):
    first, second, third = (builds.steps[name].champion for name in ("dummy", "default", "target"))
    assert alias(builds) == third

    for expected in (second, first):
        rolled = champion_command(builds, "rollback")
        assert rolled.returncode == 0, rolled.stderr
        assert alias(builds) == expected
    # the first champion replaced nothing
    refused = champion_command(builds, "rollback")
    assert refused.returncode != 0 and len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    assert "no earlier version" in refused.stderr and alias(builds) == first

    assert champion_command(builds, "set", second).returncode == 0
    assert alias(builds) == second
    refused = champion_command(builds, "set", "99")
    assert refused.returncode != 0 and refused.stderr.strip() == f"bin/champion set: {MODEL_NAME} has no version '99' (registered: 1, 2, 3)"
    assert alias(builds) == second

    history = champion_command(builds, "history")
    assert history.returncode == 0, history.stderr
    lines = history.stdout.strip().splitlines()
    assert [line.split("version ")[1].split()[0] for line in lines] == [first, second, first, second, third, second, first, second]
    assert "first champion" in lines[0] and f"replaced version {first}" in lines[1]
    assert f"rollback from version {second}" in lines[2] and f"replaced version {first}: promoted" in lines[3]
    assert f"rollback from version {third}" in lines[5] and "set by hand" in lines[7]
    other = champion_command(builds, "--env--registered_model_name", "nope", "history")
    assert other.returncode != 0 and "no registered model 'nope'" in other.stderr
