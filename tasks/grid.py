"""The functions pipeline.yaml's fit groups name (`dotted_path: tasks.grid::...`).

Ploomber hands a grid function only the keys written under it, so one call
takes the whole search: every entry, nested under `entries`, and the build's
settings it needs. `candidates` makes the fits of the search (rung 0 of it
when halving is on), `rungs` the places of the later rungs (none when it is
off). An entry is a combination entry (every combination of its lists) unless
it has `n_candidates`, which makes it a sampled entry (tasks/search.py).

A search that cannot be expanded stops the loading of pipeline.yaml with one
line naming the entry or the setting (Ploomber prints its own errors without a
traceback), before any task runs. The models are checked before the fits run
(models.validate, from hooks.preflight).
"""
from ploomber_core.exceptions import BaseException as PloomberError

from tasks import halving as halving_search
from tasks import search


class GridEntryError(PloomberError):
    """A grid entry or search setting that cannot be expanded, shown by Ploomber as `Error: <one line>`."""


def candidates(entries, seed=None, halving=False, **halving_settings):
    """Every candidate of `entries`, in their order; with `halving` on, each on rung 0."""
    found = _expanded(entries, seed)
    if halving is not True:
        return found
    schedule = _schedule(found, entries, **halving_settings)
    return [search.ModelSpec(halving_search.rung_spec(candidate, schedule, 0)) for candidate in found]


def rungs(entries, seed=None, halving=False, **halving_settings):
    """The places of rungs 1, 2, ...: `candidates_on(rung)` per rung, each after
    every fit of the rung before. None when halving is off."""
    if halving is not True:
        return []
    found = _expanded(entries, seed)
    schedule = _schedule(found, entries, **halving_settings)
    places = []
    before = [halving_search.rung_spec(candidate, schedule, 0)["name"] for candidate in found]
    for rung in range(1, schedule.n_rungs):
        slots = [halving_search.slot_spec(schedule, rung, slot, before) for slot in range(schedule.candidates_on(rung))]
        places += [search.ModelSpec(slot) for slot in slots]
        before = [slot["name"] for slot in slots]
    return places


def _expanded(entries, seed):
    try:
        return search.expand(entries, seed)
    except search.SearchError as error:
        raise GridEntryError(str(error)) from None


def _schedule(found, entries, halving_factor=3, halving_resource=halving_search.RESOURCE_ROWS,
              halving_min_resources="exhaust", halving_max_resources=None, metric="accuracy"):
    problem = halving_search.schedule_problem(
        halving_factor, halving_resource, halving_min_resources, halving_max_resources
    ) or _resource_in_space(entries, halving_resource)
    if problem:
        raise GridEntryError(problem)
    return halving_search.Schedule(len(found), halving_factor, halving_resource, halving_min_resources,
                                   halving_max_resources, metric)


def _resource_in_space(entries, resource):
    for entry in entries:
        if resource in entry:
            return (f"halving_resource {resource!r} is a hyperparameter of grid entry {entry.get('model')}: "
                    f"halving sets it on each rung; drop it from the entry or halve on another resource")
    return None
