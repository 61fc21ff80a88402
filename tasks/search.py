"""Search strategies: how the grid entries of pipeline.yaml become candidates, and what a task is.

As in scikit-learn's model_selection, each strategy is one small function over
parts they share:

- `combinations`: every combination of lists of values (GridSearchCV's ParameterGrid);
- `samples`: `n_candidates` drawn from distributions (RandomizedSearchCV's
  ParameterSampler, with the same candidates for the same seed);
- successive halving (tasks/halving.py): the candidates of both, fitted in
  rungs on a growing resource (HalvingGridSearchCV, HalvingRandomSearchCV).

Each returns ModelSpecs, one per fit task. Every fit is split and scored the
same way whatever its strategy (tasks/models.py: split, cross_validate,
cv_summary), and `what_is` tells the rest of the code what a task of the DAG
is: a fit (of which strategy and candidate), compare, score or a data task.

Loading pipeline.yaml calls these on every build, so nothing heavy is imported
here: scipy.stats and scikit-learn's sampler only when a sampled entry is
expanded (0.8 s, once).
"""
import ast
import itertools
import math
import re
from dataclasses import dataclass
from pathlib import Path

# the tags every fit run carries (tracking.fit_runs); their names are fixed
STRATEGY_TAG = "search.strategy"
CANDIDATE_TAG = "search.candidate"
RUNG_TAG = "search.rung"
RESOURCE_TAG = "search.resource_value"

DISTRIBUTION = re.compile(r"^\s*([A-Za-z_]\w*)\s*\((.*)\)\s*$")
DISTRIBUTIONS = ("loguniform", "uniform", "randint")
# significant digits of a sampled value in a task's name (the params keep all of them)
NAME_DIGITS = 4


class SearchError(ValueError):
    """A grid entry that cannot produce candidates; its message is one line naming it."""


class ModelSpec(dict):
    """One candidate: {"name", "class", "params"}, and "strategy" unless it is a grid point.

    A plain dict to Ploomber, so it is injected into the notebook and hashed
    into the task's metadata like one; str() gives its readable, file-safe
    name, which pipeline.yaml uses for task and product names.
    """

    def __str__(self):
        return self["name"]


def expand(entries, seed):
    """The candidates of every entry, in their order: a sampled entry (one with
    `n_candidates`) draws them with `seed`, a combination entry takes every combination."""
    if not isinstance(entries, list) or not all(isinstance(e, dict) and e.get("model") for e in entries):
        raise SearchError(f"grid entries {entries!r}: expected a list of entries, each with model: <dotted path>")
    found = []
    for entry in entries:
        entry = dict(entry)
        if "n_candidates" in entry:
            found += samples(entry.pop("model"), seed=seed, **entry)
        else:
            found += combinations(entry.pop("model"), **entry)
    return found


def combinations(model, **hyperparameters):
    """Every combination of one grid entry: `model` is the dotted path of a
    scikit-learn classifier; every other key is a hyperparameter with a list
    of values (a single value means a list of one)."""
    names = list(hyperparameters)
    value_lists = [_as_list(hyperparameters[name]) for name in names]
    return [
        ModelSpec(name=spec_name(model, params), params=params, **{"class": model})
        for params in (dict(zip(names, values)) for values in itertools.product(*value_lists))
    ]


def samples(model, n_candidates=None, seed=None, **space):
    """`n_candidates` candidates of `model` drawn from `space`, exactly those of
    `ParameterSampler(space, n_iter=n_candidates, random_state=seed)` with each
    value read by `distribution`. `seed` is the build's (pipeline.yaml passes
    "{{seed}}" to the grid function), so another seed draws another sample.

    With a distribution in the space, the sampler draws with replacement, one
    candidate after the other: raising n_candidates keeps the earlier ones
    (and their names). With lists only, it draws without replacement, and
    another n_candidates can draw another set.
    """
    where = f"grid entry {model}"
    if not _is_whole(n_candidates) or n_candidates < 1:
        raise SearchError(f"{where}: n_candidates {n_candidates!r}: expected a whole number of at least 1")
    if not _is_whole(seed):
        raise SearchError(f'{where}: seed {seed!r}: expected the build\'s seed, given to the grid as seed: "{{{{seed}}}}"')
    parsed = {name: distribution(where, name, value) for name, value in space.items()}
    lists = [value for value in parsed.values() if isinstance(value, list)]
    if len(lists) == len(parsed) and (combined := math.prod(map(len, lists))) < n_candidates:
        raise SearchError(
            f"{where}: n_candidates {n_candidates} is more than the {combined} combinations "
            f"of its lists; lower it, or take them all with tasks.grid::combinations"
        )
    from sklearn.model_selection import ParameterSampler

    sampler_space = {name: value if isinstance(value, list) else value.frozen() for name, value in parsed.items()}
    candidates, taken = [], set()
    for drawn in ParameterSampler(sampler_space, n_iter=n_candidates, random_state=seed):
        params = {name: _plain(drawn[name]) for name in space}  # in the entry's order, for the name
        name = _unique(spec_name(model, {k: _rounded(v) for k, v in params.items()}), taken)
        candidates.append(ModelSpec(name=name, params=params, strategy="sampled", **{"class": model}))
    return candidates


@dataclass(frozen=True)
class Distribution:
    """loguniform(a, b), uniform(a, b) (from a to b) or randint(a, b) (a to b - 1), as in a grid entry."""

    kind: str
    low: float
    high: float

    def frozen(self):
        """The matching scipy.stats distribution. scipy's uniform takes (loc, scale): from a to a + scale."""
        from scipy import stats

        if self.kind == "uniform":
            return stats.uniform(loc=self.low, scale=self.high - self.low)
        return getattr(stats, self.kind)(self.low, self.high)

    def __str__(self):
        return f"{self.kind}({self.low}, {self.high})"


def distribution(where, name, value):
    """A value of a sampled entry as the sampler takes it: a Distribution, a
    list to draw from uniformly, or a single value, fixed (a list of one)."""
    if isinstance(value, (list, tuple)):
        if not value:
            raise SearchError(f"{where}: {name}: an empty list; expected values to draw from")
        return list(value)
    match = DISTRIBUTION.match(value) if isinstance(value, str) else None
    if match is None:
        return [value]
    kind, text = match.groups()
    if kind not in DISTRIBUTIONS:
        raise SearchError(
            f"{where}: {name}: unknown distribution {value!r}; expected loguniform(a, b), uniform(a, b), "
            f"randint(a, b), a list or a single value"
        )
    bounds = _bounds(text)
    whole = kind == "randint"
    if bounds is None or not all(_is_whole(b) if whole else _is_number(b) for b in bounds):
        numbers = "two whole numbers" if whole else "two numbers"
        raise SearchError(f"{where}: {name}: malformed {value!r}; expected {kind}(a, b) with {numbers}")
    low, high = bounds
    if low >= high:
        raise SearchError(f"{where}: {name}: {value!r} cannot be sampled: expected a below b")
    if kind == "loguniform" and low <= 0:
        raise SearchError(f"{where}: {name}: {value!r} cannot be sampled: loguniform needs a above 0")
    return Distribution(kind, low, high)


@dataclass(frozen=True)
class TaskRole:
    """What a task of the DAG is. For a fit: its strategy and candidate."""

    kind: str  # "fit", "compare", "score" or "data"
    strategy: str | None = None  # "grid" or "sampled"
    candidate: str | None = None  # None for a later rung's place: it reads its candidate from the rung before
    rung: int | None = None  # None outside successive halving

    @property
    def is_fit(self):
        return self.kind == "fit"


def what_is(task):
    """The role of a task of the DAG, from the notebook it runs (scripts/fit.py,
    compare.py, score.py; a function of tasks/data.py otherwise) and, for a
    fit, the candidate its grid entry made."""
    kind = Path(str(getattr(task.source, "loc", ""))).stem
    if kind not in ("fit", "compare", "score"):
        return TaskRole("data")
    if kind != "fit":
        return TaskRole(kind)
    spec = task.params["model"]
    if "halving" not in spec:
        return TaskRole("fit", spec.get("strategy", "grid"), spec["name"])
    return TaskRole("fit", spec.get("strategy"), spec["halving"].get("candidate"), spec["halving"]["rung"])


def run_tags(spec):
    """The search's tags on a fit's run: its strategy and candidate, and in halving its rung."""
    if "halving" not in spec:
        return {STRATEGY_TAG: spec.get("strategy", "grid"), CANDIDATE_TAG: spec["name"]}
    return {STRATEGY_TAG: spec.get("strategy", "grid"), CANDIDATE_TAG: spec["halving"]["candidate"],
            RUNG_TAG: str(spec["halving"]["rung"])}


def spec_name(model, params):
    parts = [str(model).rsplit(".", 1)[-1]] + [f"{k}={v}" for k, v in params.items()]
    return re.sub(r"[^A-Za-z0-9._=-]+", "_", "-".join(parts))


def _unique(name, taken):
    """`name`, or `name-2`, `name-3`, ... once it is taken: two draws can round alike, or repeat."""
    unique = next(n for n in itertools.chain([name], (f"{name}-{i}" for i in itertools.count(2))) if n not in taken)
    taken.add(unique)
    return unique


def _bounds(text):
    try:
        bounds = ast.literal_eval(f"({text},)")
    except (ValueError, SyntaxError):
        return None
    return bounds if len(bounds) == 2 else None


def _plain(value):
    """A numpy scalar drawn by scipy as the Python number it holds (for the estimator, the params, JSON)."""
    return value.item() if hasattr(value, "item") else value


def _rounded(value):
    return float(f"{value:.{NAME_DIGITS}g}") if isinstance(value, float) else value


def _as_list(values):
    return list(values) if isinstance(values, (list, tuple)) else [values]


def _is_whole(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
