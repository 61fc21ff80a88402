"""Expands the grid entries of pipeline.yaml into one model spec per fit task.

Loading pipeline.yaml calls `combinations`, on every build, so this module
imports nothing heavy; `models.validate` checks the specs of the fits that
are about to run (see hooks.preflight).
"""
import itertools
import re


class ModelSpec(dict):
    """One point of the grid: {"name", "class", "params"}.

    A plain dict to Ploomber, so it is injected into the notebook and hashed
    into the task's metadata like one; str() gives its readable, file-safe
    name, which pipeline.yaml uses for task and product names.
    """

    def __str__(self):
        return self["name"]


def combinations(model, **hyperparameters):
    """Every combination of one grid entry.

    `model` is the dotted path of a scikit-learn classifier; every other key is
    a hyperparameter with a list of values (a single value means a list of one).
    """
    names = list(hyperparameters)
    value_lists = [_as_list(hyperparameters[name]) for name in names]
    return [
        ModelSpec(name=_spec_name(model, params), params=params, **{"class": model})
        for params in (dict(zip(names, values)) for values in itertools.product(*value_lists))
    ]


def _as_list(values):
    return list(values) if isinstance(values, (list, tuple)) else [values]


def _spec_name(model, params):
    parts = [str(model).rsplit(".", 1)[-1]] + [f"{k}={v}" for k, v in params.items()]
    return re.sub(r"[^A-Za-z0-9._=-]+", "_", "-".join(parts))
