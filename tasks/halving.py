"""Successive halving: the rungs of a search, as scikit-learn's HalvingGridSearchCV runs them.

Rung 0 fits every candidate at the smallest resource; each next rung keeps the
best ceil(n / factor) of the rung before (compare's order: the cross-validated
mean of the metric, highest first, then its std, then the candidate's name)
and gives them `factor` times more. The number of rungs, and so the DAG's
shape, depends only on the number of candidates and the factor:
scikit-learn's n_required_iterations, 1 + floor(log_factor(n_candidates)).
The resources are known only once the training split is (n_samples), so a
fit computes its own from the Schedule and its data.

Where this deviates from scikit-learn: scikit-learn stops adding rungs when the
resources would run out (n_possible_iterations) and its last rung may stay below
max_resources; here every required rung runs, the resource stops growing at
max_resources, and the last rung always uses max_resources, so its scores
compare with any full fit and with the champion's.

Pure: no scikit-learn or MLflow import at load time.
"""
import math
from dataclasses import asdict, dataclass

RESOURCE_ROWS = "n_samples"
MIN_RESOURCES = ("exhaust", "smallest")


class HalvingError(ValueError):
    """A halving setting that cannot make a schedule; its message is one line naming it."""


@dataclass(frozen=True)
class Schedule:
    """The rungs of one search: n_candidates on rung 0, cut by `factor` on each next rung."""

    n_candidates: int
    factor: int = 3
    resource: str = RESOURCE_ROWS
    min_resources: str | int = "exhaust"
    max_resources: int | None = None
    metric: str = "accuracy"

    @property
    def n_rungs(self):
        """scikit-learn's n_required_iterations."""
        return 1 + math.floor(math.log(self.n_candidates, self.factor))

    def candidates_on(self, rung):
        """How many candidates rung `rung` fits: n_candidates, then ceil(n / factor) each rung."""
        count = self.n_candidates
        for _ in range(rung):
            count = math.ceil(count / self.factor)
        return count

    def resources(self, max_resources, smallest):
        """The resource of each rung, given the largest (the training rows for n_samples)
        and scikit-learn's smallest (2 * cv_folds * n_classes rows, or 1 for a parameter)."""
        if self.min_resources == "exhaust":
            first = max(smallest, max_resources // self.factor ** (self.n_rungs - 1))
        elif self.min_resources == "smallest":
            first = smallest
        else:
            first = self.min_resources
        grown = [min(first * self.factor**rung, max_resources) for rung in range(self.n_rungs - 1)]
        return grown + [max_resources]

    def as_dict(self):
        return asdict(self)


def schedule_problem(factor, resource, min_resources, max_resources):
    """One line naming the halving setting that makes no schedule, or None."""
    if not _is_whole(factor) or factor < 2:
        return f"halving_factor {factor!r}: expected an integer of at least 2"
    if not isinstance(resource, str) or not resource.isidentifier():
        return f"halving_resource {resource!r}: expected n_samples or the name of an estimator parameter"
    if min_resources not in MIN_RESOURCES and not (_is_whole(min_resources) and min_resources >= 1):
        return f"halving_min_resources {min_resources!r}: expected exhaust, smallest or a whole number of at least 1"
    if max_resources is not None and not (_is_whole(max_resources) and max_resources >= 1):
        return f"halving_max_resources {max_resources!r}: expected a whole number of at least 1, or null"
    if resource != RESOURCE_ROWS and max_resources is None:
        return (f"halving_max_resources: needed when halving_resource is an estimator parameter ({resource}): "
                f"the value of {resource} on the last rung")
    if _is_whole(min_resources) and max_resources is not None and min_resources > max_resources:
        return f"halving_min_resources {min_resources}: above halving_max_resources {max_resources}"
    return None


def rows_problem(min_resources, max_resources, resource, training_rows):
    """One line naming a halving setting that the training split's `training_rows` rule out, or None."""
    if resource != RESOURCE_ROWS:
        return None
    for name, value in (("halving_min_resources", min_resources), ("halving_max_resources", max_resources)):
        if _is_whole(value) and value > training_rows:
            return f"{name} {value}: above the {training_rows} rows of the training split"
    return None


def rung_spec(candidate, schedule, rung):
    """A candidate's spec on `rung`: named after the rung, with what a fit needs to find its resource.
    A parameter resource is known without the data, so it is one of the spec's params: its run's
    `model.params` trains it again as it was (a champion re-evaluated on other folds)."""
    search = {"rung": rung, "candidate": candidate["name"], "schedule": schedule.as_dict()}
    params = candidate["params"]
    if schedule.resource != RESOURCE_ROWS:
        params = {**params, schedule.resource: schedule.resources(schedule.max_resources, 1)[rung]}
    return {**candidate, "name": f"rung{rung}-{candidate['name']}", "params": params, "halving": search}


def slot_spec(schedule, rung, slot, after):
    """Place `slot` of `rung` (1 and up): it trains the slot-th survivor of the rung before, whose fits are `after`."""
    search = {"rung": rung, "slot": slot, "schedule": schedule.as_dict()}
    return {"name": f"rung{rung}-{slot}", "after": list(after), "halving": search}


def resource_parameter(spec):
    """The estimator parameter a halving fit's resource sets, None for n_samples or outside halving."""
    resource = spec["halving"]["schedule"]["resource"] if "halving" in spec else RESOURCE_ROWS
    return None if resource == RESOURCE_ROWS else resource


def training_rows(spec, resource):
    """The training rows a fit gets: `resource` when it halves on n_samples, else all of them (None)."""
    return resource if "halving" in spec and resource_parameter(spec) is None else None


def resource_text(spec, resource):
    """What a fit's resource is, for its report: "90 training rows" or "n_estimators=30"."""
    parameter = resource_parameter(spec)
    return f"{parameter}={resource}" if parameter else f"{resource} training rows"


def rung_of(spec):
    """The rung of a fit's spec, None outside a halving search."""
    return spec["halving"]["rung"] if "halving" in spec else None


def is_final(spec):
    """Whether a fit's spec is a full fit: outside halving, or on the last rung."""
    if "halving" not in spec:
        return True
    return spec["halving"]["rung"] == Schedule(**spec["halving"]["schedule"]).n_rungs - 1


def candidate_name(spec):
    return spec["halving"]["candidate"] if "halving" in spec else spec["name"]


def ranked(records, metric):
    """Fit records ({"candidate", "cv", ...}: tracking.read_record), best first, in compare's order."""
    def order(record):
        return (-record["cv"][f"cv_{metric}_mean"], record["cv"][f"cv_{metric}_std"], candidate_name(record["candidate"]))

    return sorted(records, key=order)


def trained_by(spec, previous_rung):
    """The spec a fit trains: `spec` itself, or, for a slot, the slot-th best
    of `previous_rung` (the records of the rung before's fits) on this rung."""
    if "slot" not in spec.get("halving", {}):
        return spec
    search = spec["halving"]
    survivors = ranked(previous_rung, search["schedule"]["metric"])
    if len(previous_rung) != Schedule(**search["schedule"]).candidates_on(search["rung"] - 1):
        raise HalvingError(f"{spec['name']}: expected the records of every fit of rung {search['rung'] - 1}, "
                           f"found {len(previous_rung)}")
    candidate = {k: v for k, v in survivors[search["slot"]]["candidate"].items() if k != "halving"}
    candidate["name"] = candidate_name(survivors[search["slot"]]["candidate"])
    return rung_spec(candidate, Schedule(**search["schedule"]), search["rung"])


def resource_value(spec, training_rows, n_classes, cv_folds):
    """The resource a halving fit gets (rows of the training split, or the parameter's value), None outside halving."""
    if "halving" not in spec:
        return None
    if parameter := resource_parameter(spec):
        return spec["params"][parameter]
    schedule = Schedule(**spec["halving"]["schedule"])
    largest = min(schedule.max_resources or training_rows, training_rows)
    return schedule.resources(largest, 2 * cv_folds * n_classes)[spec["halving"]["rung"]]


def rungs_table(records, metric):
    """One row per fit of a halving search, by rung then rank: rung, candidate,
    resource, the cv mean and std of `metric`, and whether it went on to the next rung."""
    halved = [r for r in records if "halving" in r.get("candidate", {})]
    rows, by_rung = [], {}
    for record in halved:
        by_rung.setdefault(record["candidate"]["halving"]["rung"], []).append(record)
    for rung in sorted(by_rung):
        kept = {candidate_name(r["candidate"]) for r in by_rung.get(rung + 1, [])}
        for rank, record in enumerate(ranked(by_rung[rung], metric), 1):
            rows.append({
                "rung": rung, "rank": rank, "candidate": candidate_name(record["candidate"]),
                "resource": record.get("resource"), f"cv_{metric}_mean": record["cv"][f"cv_{metric}_mean"],
                f"cv_{metric}_std": record["cv"][f"cv_{metric}_std"], "kept": candidate_name(record["candidate"]) in kept,
                "run_id": record.get("run_id"),
            })
    return rows


def _is_whole(value):
    return isinstance(value, int) and not isinstance(value, bool)
