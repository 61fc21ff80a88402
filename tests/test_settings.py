"""Settings: every key of env.yaml checked before any run, the tracking URI in MLflow's order, a quiet console."""
import os
import subprocess
import sys

import pytest
import yaml

import settings
import tracking
from sandbox import ROOT

ONE_FIT = [{"model": "sklearn.dummy.DummyClassifier", "strategy": "prior"}]


def without_tracking_uri_variable():
    return {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}


def assert_stopped_before_any_run(project, result, message):
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert message in output
    assert "Traceback" not in output  # one line, not a stack
    assert not project.store.exists()
    assert not (project.path / "products" / "fit").exists()


# ------------------------------------------------------------ wrong values, through a build


@pytest.mark.parametrize(
    "args, message",
    [
        (["--env--track", "no"], "track 'no': expected true or false"),
        (["--env--track", "off"], "track 'off': expected true or false"),
        (["--env--test_size", "1.5"], "test_size 1.5: expected a fraction between 0 and 1"),
        (["--env--test_size", "148"], "test_size 148: leaves 148 held-out and 2 training rows of 150; "
                                      "each split needs at least one row per class (3)"),
        (["--env--seed", "abc"], "seed 'abc': expected a whole number"),
        (["--env--experiment_name", ""], "experiment_name is empty"),
        # successive halving's settings (tests/test_halving.py builds with them)
        (["--env--halving", "true", "--env--halving_factor", "1"], "halving_factor 1: expected an integer of at least 2"),
        (["--env--halving", "true", "--env--halving_min_resources", "500"],
         "halving_min_resources 500: above the 105 rows of the training split"),
        (["--env--halving", "true", "--env--halving_min_resources", "few"],
         "halving_min_resources 'few': expected exhaust, smallest or a whole number"),
        (["--env--halving", "true", "--env--halving_resource", "max_iter"],
         "halving_max_resources: needed when halving_resource is an estimator parameter (max_iter)"),
        (["--env--halving", "true", "--env--halving_resource", "max_depth", "--env--halving_max_resources", "8"],
         "halving_resource 'max_depth': grid entry sklearn.ensemble.AdaBoostClassifier has no such parameter"),
        (["--env--halving", "true", "--env--halving_resource", "n_estimators", "--env--halving_max_resources", "40"],
         "halving_resource 'n_estimators' is a hyperparameter of grid entry sklearn.ensemble.RandomForestClassifier"),
    ],
)
def test_a_wrong_setting_stops_the_build_before_any_run(project, args, message):
    result = project.build(*args, check=False)
    assert_stopped_before_any_run(project, result, message)


def test_an_unknown_key_in_env_yaml_is_named_with_the_closest_known_one(project):
    with open(project.path / "env.yaml", "a") as env:
        env.write("trak: true\n")
    result = project.build(check=False)
    assert_stopped_before_any_run(project, result, "env.yaml: unknown setting `trak`; did you mean `track`?")


def test_a_bad_mlflow_tracking_uri_variable_is_named_before_any_run(project):
    result = project.build(store=False, check=False, env={"MLFLOW_TRACKING_URI": "ftp://alice:pw@example.com/store"})
    assert_stopped_before_any_run(
        project, result, "tracking URI 'ftp://alice:***@example.com/store' (from MLFLOW_TRACKING_URI): expected one of"
    )
    assert ":pw@" not in result.stdout + result.stderr


# ------------------------------------------------------------ the table itself


@pytest.mark.parametrize(
    "key, wrong, right",
    [
        ("cv_folds", [1, 0, 2.5, "five", True], [2, 5]),
        ("min_improvement", [-0.01, "none", float("nan"), True], [0, 0.005, 1]),
        ("track", ["no", "off", "yes", 1, None], [True, False]),
        ("seed", ["abc", 1.5, -1, 2**32], [0, 42]),
        ("test_size", [0, 0.0, 1.0, 1.5, -3, "0.3"], [0.3, 10]),
        ("halving", ["yes", 1, None], [True, False]),
        ("halving_factor", [1, 0, 2.5, "3", True], [2, 3]),
        ("halving_resource", ["", "n samples", 3], ["n_samples", "n_estimators"]),
        ("halving_min_resources", [0, "least", 2.5, True], ["exhaust", "smallest", 30]),
        ("halving_max_resources", [0, "all", 2.5], [None, 40]),
    ],
)
def test_each_setting_is_checked_by_type(key, wrong, right):
    for value in wrong:
        problem = settings.first_problem({key: value})
        assert problem and problem.startswith(key) and "\n" not in problem, value
    for value in right:
        assert settings.first_problem({key: value}) is None, value


def test_keys_that_env_yaml_lacks_are_not_required():
    assert settings.first_problem({}) is None
    assert "cv_folds" in settings.CHECKS and "min_improvement" in settings.CHECKS


@pytest.mark.parametrize("name", ["env.yaml", "env.cluster.yaml"])
def test_every_env_file_the_project_ships_has_only_known_keys(name):
    assert settings.unknown_key(ROOT / name) is None
    keys = set().union(*(raw for _, raw in settings.env_files(ROOT / name))) - settings.PLOOMBER_KEYS
    assert keys <= set(settings.CHECKS)


def test_pipeline_yaml_passes_every_setting_of_env_yaml_to_the_checks_and_some_task_uses_each():
    spec = yaml.safe_load((ROOT / "pipeline.yaml").read_text())
    env = yaml.safe_load((ROOT / "env.yaml").read_text())
    assert set(spec["on_render"]["env"]) == set(env)
    # a task's params, or the search's settings that its grid call takes
    used = " ".join(str(task.get("params", {})) + str(task.get("grid", {})) for task in spec["tasks"])
    assert [key for key in env if "{{%s}}" % key not in used] == []


# ------------------------------------------------------------ the tracking URI


def test_the_tracking_uri_follows_mlflows_order(monkeypatch):
    default = "${MLFLOW_TRACKING_URI:-sqlite:////project/mlflow.db}"
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert tracking.resolve_tracking_uri(default) == (
        "sqlite:////project/mlflow.db", "env.yaml's default, as MLFLOW_TRACKING_URI is not set"
    )
    with pytest.raises(ValueError, match="MLFLOW_TRACKING_URI is not set"):
        tracking.resolve_tracking_uri("${MLFLOW_TRACKING_URI}")

    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    assert tracking.resolve_tracking_uri(default) == ("http://127.0.0.1:5000", "MLFLOW_TRACKING_URI")
    assert tracking.resolve_tracking_uri("${MLFLOW_TRACKING_URI}") == ("http://127.0.0.1:5000", "MLFLOW_TRACKING_URI")
    # given on the command line: wins over the variable
    assert tracking.resolve_tracking_uri("sqlite:///given.db") == ("sqlite:///given.db", "--env--mlflow_tracking_uri")


def test_runs_go_to_mlflow_tracking_uri_else_to_the_projects_store_and_the_build_says_so(project):
    project.set_grid(ONE_FIT)
    elsewhere = project.path / "elsewhere.db"
    result = project.build(store=False, env={"MLFLOW_TRACKING_URI": f"sqlite:///{elsewhere}"})
    assert f"MLflow runs go to sqlite:///{elsewhere} (from MLFLOW_TRACKING_URI)\n" in result.stdout
    assert not project.store.exists()
    assert len(_at(project, elsewhere).fit_runs()) == 1

    result = subprocess.run(
        project.build_command("--force", store=False), cwd=project.path, capture_output=True, text=True,
        env=without_tracking_uri_variable(),
    )
    assert result.returncode == 0, result.stderr
    line = f"MLflow runs go to sqlite:///{project.path}/mlflow.db (from env.yaml's default, as MLFLOW_TRACKING_URI is not set)"
    assert line in result.stdout
    assert len(project.fit_runs()) == 1


def _at(project, store):
    """The same project, read from another store."""
    other = project.__class__(project.path)
    other.tracking_uri = f"sqlite:///{store}"
    return other


# ------------------------------------------------------------ a quiet console
# (a build's own console is checked on the shared build, in test_pipeline.py)


def test_mlflow_warnings_and_errors_still_show():
    script = (
        "import logging, tracking, mlflow\n"
        "log = logging.getLogger('mlflow.store.db.utils')\n"
        "log.info('an info line'); log.warning('a warning line'); log.error('an error line')\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT,
                            env={k: v for k, v in os.environ.items() if k != "MLFLOW_LOGGING_LEVEL"})
    assert "a warning line" in result.stderr and "an error line" in result.stderr
    assert "an info line" not in result.stderr
