"""The warm-up before the workers fork: what every fit would do on its first run, done once.

hooks.preflight calls warm_up_workers in the main process; the workers that
runner/executor.py forks from it afterwards start their first fit as fast as
their next.
"""
import gc
import importlib
import os
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

import tracking
from runner import interrupts, workers
from tracking import model_files, raw_model, reports, store

# Imported once, before the workers fork from this process, not once per worker.
FIT_IMPORTS = ("ploomber_engine", "tasks.charts")


def warm_up_workers(store_to_create):
    """Do here, once, what every worker would otherwise do on its first fit,
    before the workers fork from this process. Creating a fresh store
    (MLflow's schema migrations; `store_to_create` is (tracking URI,
    experiment) or None) takes seconds too: a helper process does it
    meanwhile (it exits if this process dies meanwhile: workers.start_helper)."""
    with ProcessPoolExecutor(
        1, mp_context=get_context("fork"), initializer=workers.start_helper, initargs=(os.getpid(),)
    ) as helper:
        created = helper.submit(tracking.prepare_store, *store_to_create) if store_to_create else None
        interrupts.raise_if_dropped()  # a Ctrl-C as the helper forked
        for module in FIT_IMPORTS:
            importlib.import_module(module)
        if store_to_create:
            _what_a_tracked_fit_does_once()
            created.result()
    # Everything imported so far lives as long as the workers: out of the
    # garbage collector's sight, it is neither scanned by every full
    # collection of every worker nor copied into them by those scans.
    gc.freeze()


def _what_a_tracked_fit_does_once():
    """The imports, compiling nbconvert's templates, MLflow's scan of the
    installed packages, setting up its ORM, reading the git lineage."""
    import matplotlib_inline.backend_inline  # noqa: F401
    import mlflow.pyfunc.loaders.code_model  # noqa: F401
    import mlflow.store.tracking.sqlalchemy_store  # noqa: F401
    import nbformat
    import PIL.Image
    import sqlalchemy.orm
    from mlflow.utils.requirements_utils import warn_dependency_requirement_mismatches

    model_files.import_skops_io()
    reports.html_exporter().from_notebook_node(nbformat.v4.new_notebook())
    warn_dependency_requirement_mismatches(raw_model.pip_requirements())
    raw_model.staged_code()  # the same for every fit: copied once, here
    sqlalchemy.orm.configure_mappers()
    PIL.Image.init()  # its image formats, loaded when a figure is first saved
    store.source_tags()
    try:
        import git  # noqa: F401  (MLflow reads a run's git context with it)
    except ImportError:
        pass  # no git executable: MLflow does without, and so does a build
