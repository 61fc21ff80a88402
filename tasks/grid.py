"""The functions pipeline.yaml's grid entries name (`dotted_path: tasks.grid::...`).

The strategies live in tasks/search.py; here a grid entry that cannot be
expanded stops the loading of pipeline.yaml with one line naming it (Ploomber
prints its own errors without a traceback) rather than a traceback, before
any task runs. Each entry's models are checked before its fits run
(models.validate, from hooks.preflight).
"""
from ploomber_core.exceptions import BaseException as PloomberError

from tasks import search
from tasks.search import combinations  # noqa: F401  (pipeline.yaml names tasks.grid::combinations)


class GridEntryError(PloomberError):
    """A grid entry that cannot be expanded, shown by Ploomber as `Error: <one line>`."""


def samples(model, **entry):
    """A sampled entry: `n_candidates` candidates of `model` drawn from the
    distributions of its hyperparameters (tasks.search.samples)."""
    try:
        return search.samples(model, **entry)
    except search.SearchError as error:
        raise GridEntryError(str(error)) from None
