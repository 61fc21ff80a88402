"""Sampled grid entries: the same candidates as scikit-learn's sampler, stable names, bad input, a build."""
import json
import os
import re
import subprocess

import pandas as pd
import pytest
from scipy import stats
from sklearn.model_selection import ParameterSampler, RandomizedSearchCV, StratifiedKFold
from sklearn.tree import DecisionTreeClassifier

import tracking
from sandbox import PLOOMBER
from tasks import data, grid, models, search

FOREST = "sklearn.ensemble.RandomForestClassifier"
TREE = "sklearn.tree.DecisionTreeClassifier"
# as a grid entry writes it, and as scipy.stats and ParameterSampler take it
SPACE = {
    "max_depth": "randint(2, 12)",
    "min_impurity_decrease": "loguniform(0.0001, 0.1)",
    "max_features": "uniform(0.25, 0.75)",
    "criterion": ["gini", "entropy", "log_loss"],
    "min_samples_leaf": 3,
}
SCIPY_SPACE = {
    "max_depth": stats.randint(2, 12),
    "min_impurity_decrease": stats.loguniform(0.0001, 0.1),
    "max_features": stats.uniform(loc=0.25, scale=0.5),  # from 0.25 to 0.75
    "criterion": ["gini", "entropy", "log_loss"],
    "min_samples_leaf": [3],
}
TREE_SPACE = {"max_depth": "randint(1, 5)", "min_samples_leaf": [1, 2, 4, 8], "ccp_alpha": "uniform(0.0, 0.05)"}


def sampled_candidates(seed, **entry):
    """The candidates of a search of one sampled entry of TREE."""
    return grid.candidates([{"model": TREE, **entry}], seed=seed)


def test_a_sampled_entry_draws_the_candidates_of_scikit_learns_parameter_sampler():
    candidates = sampled_candidates(n_candidates=25, seed=7, **SPACE)
    expected = list(ParameterSampler(SCIPY_SPACE, n_iter=25, random_state=7))

    assert [c["params"] for c in candidates] == expected
    assert all(0.25 <= c["params"]["max_features"] <= 0.75 for c in candidates)
    assert {type(c["params"]["max_depth"]) for c in candidates} == {int}
    assert [c["params"] for c in sampled_candidates(n_candidates=25, seed=8, **SPACE)] != expected


def test_sampled_names_are_readable_unique_stable_and_kept_when_n_candidates_grows():
    candidates = sampled_candidates(n_candidates=40, seed=42, **SPACE)
    names = [c["name"] for c in candidates]

    assert len(set(names)) == 40
    assert all(re.fullmatch(r"DecisionTreeClassifier-max_depth=\d+-min_impurity_decrease=[\d.e-]+-max_features=[\d.]+"
                            r"-criterion=\w+-min_samples_leaf=3(-\d+)?", name) for name in names), names
    first = candidates[0]
    # four significant digits in the name, all of them in the params
    assert f"max_features={float(format(first['params']['max_features'], '.4g'))}" in first["name"]
    assert len(repr(first["params"]["max_features"])) > 8
    assert names == [c["name"] for c in sampled_candidates(n_candidates=40, seed=42, **SPACE)]
    assert names[:10] == [c["name"] for c in sampled_candidates(n_candidates=10, seed=42, **SPACE)]


def test_draws_that_repeat_or_round_alike_get_numbered_names():
    candidates = sampled_candidates(n_candidates=6, seed=0, max_depth="randint(1, 3)")
    names = [c["name"] for c in candidates]
    assert len(set(names)) == 6
    assert {c["params"]["max_depth"] for c in candidates} <= {1, 2}
    assert any(name.endswith("-2") for name in names)


def test_a_task_says_what_it_is(project):
    project.add_sampled_entry(TREE, 2, max_depth="randint(1, 5)")
    from ploomber.spec import DAGSpec

    dag = DAGSpec(str(project.path / "pipeline.yaml")).to_dag()
    roles = {name: search.what_is(dag[name]) for name in dag}

    assert {r.kind for r in roles.values()} == {"data", "fit", "compare", "score"}
    fits = [r for r in roles.values() if r.is_fit]
    assert [r.strategy for r in fits] == ["grid"] * 8 + ["sampled"] * 2
    assert all(f"fit-{r.candidate}" in roles for r in fits)


@pytest.mark.parametrize(
    "entry, message",
    [
        ({"max_depth": "normal(2, 12)"}, "max_depth: unknown distribution 'normal(2, 12)'; expected loguniform(a, b)"),
        ({"max_depth": "randint(2)"}, "max_depth: malformed 'randint(2)'; expected randint(a, b) with two whole numbers"),
        ({"max_depth": "randint(2, 5.5)"}, "malformed 'randint(2, 5.5)'; expected randint(a, b) with two whole"),
        ({"ccp_alpha": "uniform(a, b)"}, "ccp_alpha: malformed 'uniform(a, b)'; expected uniform(a, b) with two numbers"),
        ({"max_depth": "randint(12, 2)"}, "max_depth: 'randint(12, 2)' cannot be sampled: expected a below b"),
        ({"ccp_alpha": "uniform(0.1, 0.1)"}, "ccp_alpha: 'uniform(0.1, 0.1)' cannot be sampled: expected a below b"),
        ({"ccp_alpha": "loguniform(0, 1)"}, "'loguniform(0, 1)' cannot be sampled: loguniform needs a above 0"),
        ({"n_candidates": 0}, "n_candidates 0: expected a whole number of at least 1"),
        ({"n_candidates": 2.5}, "n_candidates 2.5: expected a whole number of at least 1"),
        ({"max_depth": [1, 2], "criterion": ["gini", "entropy"]},
         "n_candidates 5 is more than the 4 combinations of its lists"),
        ({"max_depth": []}, "max_depth: an empty list"),
        ({"seed": None}, "seed None: expected the build's seed, given to the grid as seed: \"{{seed}}\""),
    ],
)
def test_each_bad_sampled_entry_gets_one_line_naming_it(entry, message):
    with pytest.raises(grid.GridEntryError) as error:
        sampled_candidates(**{"n_candidates": 5, "seed": 42, **entry})
    assert message in error.value.get_message()
    assert error.value.get_message().startswith(f"Error: grid entry {TREE}: ")
    assert "\n" not in error.value.get_message()


@pytest.mark.parametrize(
    "space, message",
    [
        ({"max_dept": "randint(1, 5)"}, "unknown hyperparameter(s) max_dept"),
        ({"max_depth": "randint(0, 3)"}, "The 'max_depth' parameter of DecisionTreeClassifier must be"),
    ],
)
def test_a_sampled_hyperparameter_or_a_drawn_value_the_estimator_rejects_gets_one_line(space, message):
    with pytest.raises(models.GridError) as error:
        for spec in sampled_candidates(n_candidates=20, seed=42, **space):
            models.validate(spec)
    assert message in str(error.value)
    assert str(error.value).startswith(f"grid entry {TREE}")


def test_a_bad_sampled_entry_stops_the_build_with_one_line_before_any_run(project):
    project.add_sampled_entry(TREE, 3, max_depth="randint(5, 2)")
    result = project.build(check=False)

    assert result.returncode != 0
    assert f"Error: grid entry {TREE}: max_depth: 'randint(5, 2)' cannot be sampled" in result.stderr
    assert "Traceback" not in result.stderr
    assert not project.store.exists()
    assert not (project.path / "products" / "fit").exists()


def test_a_build_of_a_sampled_and_a_combination_entry_ranks_registers_and_agrees_with_randomized_search(project):
    project.set_grid([{"model": FOREST, "n_estimators": [10]}])
    project.add_sampled_entry(TREE, 6, **TREE_SPACE)
    project.build()

    runs = project.fit_runs()
    sampled = {r.data.tags["search.candidate"]: r for r in runs if r.data.tags["search.strategy"] == "sampled"}
    candidates = sampled_candidates(n_candidates=6, seed=42, **TREE_SPACE)
    assert len(runs) == 7 and set(sampled) == {c["name"] for c in candidates}
    assert {r.info.status for r in runs} == {"FINISHED"}
    for candidate in candidates:
        run = sampled[candidate["name"]]
        assert run.info.run_name == candidate["name"]
        assert json.loads(run.data.tags["model.params"]) == candidate["params"]  # full precision
        assert float(run.data.params["ccp_alpha"]) == candidate["params"]["ccp_alpha"]
        assert {tracking.REPORT_ARTIFACT, tracking.CONFUSION_MATRIX_ARTIFACT} <= {a.path for a in project.client().list_artifacts(run.info.run_id)}

    board = pd.read_csv(project.path / "products" / "leaderboard.csv")
    assert set(board["run_id"]) == {r.info.run_id for r in runs}
    champion = project.client().get_model_version_by_alias("iris-classifier", "champion")
    assert champion.run_id == board["run_id"][0]
    features = pd.read_parquet(project.path / "products" / "features.parquet")
    predictions = tracking.load_model("models:/iris-classifier@champion", project.tracking_uri).predict(
        features[data.RAW_COLUMNS].head(3))
    assert len(predictions) == 3

    # the same search by scikit-learn, on the same training split and folds
    X_train, _, y_train, _ = models.split(features, data.TARGET, 0.3, 42)
    space = {"max_depth": stats.randint(1, 5), "min_samples_leaf": [1, 2, 4, 8], "ccp_alpha": stats.uniform(0.0, 0.05)}
    randomized = RandomizedSearchCV(
        DecisionTreeClassifier(random_state=42), space, n_iter=6, random_state=42, scoring="accuracy",
        cv=StratifiedKFold(5, shuffle=True, random_state=42),
    ).fit(X_train, y_train)
    results = pd.DataFrame(randomized.cv_results_)
    by_candidate = {c["name"]: i for i, c in enumerate(candidates)}
    for name, run in sampled.items():
        row = results.iloc[by_candidate[name]]
        assert row["params"] == next(c["params"] for c in candidates if c["name"] == name)
        assert run.data.metrics["cv_accuracy_mean"] == pytest.approx(row["mean_test_score"])
        assert run.data.metrics["cv_accuracy_std"] == pytest.approx(row["std_test_score"])
    tree_board = board[board["model_family"] == "DecisionTreeClassifier"].reset_index(drop=True)
    compare_pick = by_candidate[tree_board["run_name"][0]]
    top = results["mean_test_score"].max()
    assert tree_board["cv_accuracy_mean"][0] == pytest.approx(top)
    assert results["mean_test_score"][randomized.best_index_] == pytest.approx(top)
    assert results["mean_test_score"][compare_pick] == pytest.approx(top)

    again = project.build()
    assert len(project.fit_runs()) == 7, again.stdout
    other_seed = subprocess.run([PLOOMBER, "status", "--env--seed", "7"], cwd=project.path, capture_output=True,
                                text=True, check=True, env={**os.environ, "COLUMNS": "1000"}).stdout
    assert not any(f"fit-{name}" in other_seed for name in sampled)
    assert "fit-DecisionTreeClassifier-" in other_seed


def test_a_sampled_entry_builds_with_tracking_off(project):
    project.set_grid([])
    project.add_sampled_entry(TREE, 2, max_depth="randint(1, 5)")
    project.build(track=False, store=False)

    assert not project.store.exists()
    records = sorted((project.path / "products" / "fit").glob("*.run.json"))
    assert len(records) == 2 and all(json.loads(r.read_text())["run_id"] is None for r in records)
    assert all(json.loads(r.read_text())["cv"]["cv_accuracy_mean"] > 0 for r in records)
    assert "Tracking is off" in (project.path / "products" / "compare.ipynb").read_text()
