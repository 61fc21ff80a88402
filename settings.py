"""Every setting of env.yaml, checked in one place before anything runs.

CHECKS is the table of known settings: each key maps to a check of its value
that returns one line naming the setting and what it accepts, or None. A key
of an env file that is not in the table is refused, with the closest known
key. hooks.preflight calls `check` first thing, with the values as rendered for
this build (env file, then --env-- overrides); the checks that need the data
(`check_data`) run once it is loaded, still before any fit.

A key can be in the table before env.yaml has it: its check runs only when the
setting is given.
"""
import difflib
import math
from pathlib import Path

import yaml

# the env file's own section (meta: import_from), not a setting
PLOOMBER_KEYS = {"meta"}


class SettingsError(ValueError):
    """A wrong setting; its message is one line naming it."""


def _is_integer(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def check_track(value):
    if not isinstance(value, bool):
        return f"track {value!r}: expected true or false"
    return None


def check_tracking_uri(value, given_by="--env--mlflow_tracking_uri"):
    import tracking

    try:
        uri, where = tracking.resolve_tracking_uri(value, given_by)
    except ValueError as error:
        return str(error)
    return tracking.check_tracking_uri(uri, where)


def check_experiment_name(value):
    if value is None or not str(value).strip():
        return "experiment_name is empty: expected the name of the MLflow experiment of the fits"
    return None


def check_test_size(value):
    if _is_integer(value):
        if value < 1:
            return f"test_size {value!r}: expected a fraction between 0 and 1, or a whole number of rows"
        return None
    if not _is_number(value) or not 0 < value < 1:
        return f"test_size {value!r}: expected a fraction between 0 and 1 (exclusive), or a whole number of rows"
    return None


def check_seed(value):
    if not _is_integer(value) or not 0 <= value < 2**32:
        return f"seed {value!r}: expected a whole number from 0 to 2**32 - 1"
    return None


def check_compare_metric(value):
    from tasks.metrics import METRICS

    if value not in METRICS:
        return f"compare_metric {value!r} is not a metric the fits log; pick one of {', '.join(METRICS)}"
    return None


def check_registered_model_name(value):
    import tracking

    return tracking.check_model_name(value)


def check_score_input(value):
    from tasks import rows

    if value in (None, ""):
        return None
    if not isinstance(value, str):
        return f"score_input {value!r}: expected the path of a CSV file, or empty"
    return rows.check_batch_file(value)


def check_cv_folds(value):
    if not _is_integer(value) or value < 2:
        return f"cv_folds {value!r}: expected an integer of at least 2"
    return None


def check_min_improvement(value):
    if not _is_number(value) or value < 0:
        return f"min_improvement {value!r}: expected a number of at least 0"
    return None


def check_halving(value):
    if not isinstance(value, bool):
        return f"halving {value!r}: expected true or false"
    return None


def _halving_check(setting):
    """The check of one halving setting: the schedule's own (tasks/halving.py), with the others at their defaults."""
    defaults = {"halving_factor": 3, "halving_resource": "n_samples", "halving_min_resources": "exhaust",
                "halving_max_resources": None}

    def check_value(value):
        from tasks import halving

        values = {**defaults, setting: value}
        if setting == "halving_resource":
            values["halving_max_resources"] = 1  # whether it is needed is checked with the settings together
        return halving.schedule_problem(*(values[key] for key in defaults))

    return check_value


CHECKS = {
    "track": check_track,
    "mlflow_tracking_uri": check_tracking_uri,
    "experiment_name": check_experiment_name,
    "test_size": check_test_size,
    "seed": check_seed,
    "compare_metric": check_compare_metric,
    "registered_model_name": check_registered_model_name,
    "score_input": check_score_input,
    "cv_folds": check_cv_folds,
    "min_improvement": check_min_improvement,
    "halving": check_halving,
    "halving_factor": _halving_check("halving_factor"),
    "halving_resource": _halving_check("halving_resource"),
    "halving_min_resources": _halving_check("halving_min_resources"),
    "halving_max_resources": _halving_check("halving_max_resources"),
}
HALVING_SETTINGS = ("halving_factor", "halving_resource", "halving_min_resources", "halving_max_resources")


def check(env, env_file, values=True):
    """Raise SettingsError, one line, for the first unknown key of `env_file`
    (and of the files it imports) or, if `values`, the first wrong setting of
    `env`, the settings as rendered for this build."""
    if problem := unknown_key(env_file) or (values and first_problem(env, env_file)):
        raise SettingsError(problem)


def check_data(env, target):
    """Raise SettingsError, one line, for a setting that the data rules out."""
    if problem := problem_with_data(env, target):
        raise SettingsError(problem)


def first_problem(values, env_file=None):
    for key, check_value in CHECKS.items():
        if key not in values:
            continue  # a setting env.yaml does not have (yet)
        if key == "mlflow_tracking_uri":
            if values.get("track") is not True:
                continue  # tracking off touches no store
            problem = check_value(values[key], given_by(values[key], env_file))
        else:
            problem = check_value(values[key])
        if problem:
            return problem
    return _halving_problem(values)


def _halving_problem(values):
    """The halving settings together (a parameter resource needs its max), when halving is on."""
    from tasks import halving

    if values.get("halving") is not True or not all(key in values for key in HALVING_SETTINGS):
        return None
    return halving.schedule_problem(*(values[key] for key in HALVING_SETTINGS))


def problem_with_data(values, target):
    """One line naming a setting the data rules out, or None. `target` is the
    label column of the table the fits split."""
    test_size = values.get("test_size")
    if test_size is None:
        return None
    rows, classes = len(target), target.nunique()
    held_out = test_size if _is_integer(test_size) else math.ceil(test_size * rows)
    if min(held_out, rows - held_out) < classes:
        return (
            f"test_size {test_size!r}: leaves {held_out} held-out and {rows - held_out} training rows of {rows}; "
            f"each split needs at least one row per class ({classes})"
        )
    if (cv_folds := values.get("cv_folds")) is not None and (
        problem := _cv_folds_problem(target, cv_folds, test_size, values.get("seed"))
    ):
        return problem
    if values.get("halving") is True:
        from tasks import halving

        return halving.rows_problem(values.get("halving_min_resources"), values.get("halving_max_resources"),
                                    values.get("halving_resource"), rows - held_out)
    return None


def _cv_folds_problem(target, cv_folds, test_size, seed):
    """Stratified k-fold needs at least k rows of every class in the training split."""
    from tasks import models, rows

    counts = models.split(target.to_frame(), target.name, test_size, seed)[2].value_counts()
    if cv_folds > counts.min():
        return (
            f"cv_folds {cv_folds}: expected an integer of at least 2 and at most {counts.min()}, the rows of the "
            f"smallest class ({rows.class_names([counts.idxmin()])[0]}) in the training split"
        )
    return None


def unknown_key(env_file):
    """One line naming a key of `env_file`, or of a file it imports, that no task uses; or None."""
    for path, raw in env_files(env_file):
        for key in raw:
            if key in CHECKS or key in PLOOMBER_KEYS:
                continue
            close = difflib.get_close_matches(str(key), CHECKS, n=1)
            hint = f"did you mean `{close[0]}`?" if close else f"known settings: {', '.join(CHECKS)}"
            return f"{path.name}: unknown setting `{key}`; {hint}"
    return None


def env_files(env_file):
    """(path, raw mapping) of `env_file` and of each file it imports (meta: import_from)."""
    found, path = [], Path(env_file) if env_file else None
    while path is not None and path not in [p for p, _ in found]:
        raw = yaml.safe_load(path.read_text()) or {}
        found.append((path, raw))
        imported = (raw.get("meta") or {}).get("import_from")
        path = path.parent / imported if imported else None
    return found


def env_file_of(project_folder):
    """The env file Ploomber reads for the pipeline.yaml in `project_folder`:
    $PLOOMBER_ENV_FILENAME or env.yaml, None without one."""
    from ploomber.util.default import path_to_env_from_spec

    found = path_to_env_from_spec(Path(project_folder, "pipeline.yaml"))
    return Path(found) if found else None


def given_by(value, env_file):
    """Where a tracking URI that is not env.yaml's default came from: the command line or an env file."""
    import tracking

    raw = next((r["mlflow_tracking_uri"] for _, r in env_files(env_file) if "mlflow_tracking_uri" in r), None)
    if raw is None or tracking.uri.FROM_ENVIRONMENT.match(str(raw)):
        return "--env--mlflow_tracking_uri"
    if "{{" not in str(raw) and str(raw) == str(value):
        return Path(env_file).name
    return f"--env--mlflow_tracking_uri or {Path(env_file).name}"
