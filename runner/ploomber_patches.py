"""Patches to Ploomber 0.23 that make loading a large grid cost one parse, not one per task.

Loading a 1,024-fit grid took 23 s, about 20 ms per fit task, before any work
started, on every build, status or no-op rebuild. Per task, Ploomber parsed
scripts/fit.py with jupytext, parsed its parameters cell with parso to find
`upstream`, parsed its code again to warn about unused parameters, compiled
the same name and product templates of pipeline.yaml, formatted the injected
parameters cell with black and, each time a task's status changed, scanned
every task of the DAG for its downstream ones and every upstream task of
those (compare has 1,024). Only the layout of the injected cell changes. Ploomber has no hook for any of it, so the functions are
replaced here, each by one that returns what the original returns.

runner/executor.py imports this module: pipeline.yaml names that executor, and
Ploomber imports it before it builds any task, in every command that loads
the pipeline (build, status, task, nb, and soopervisor's jobs).
"""
import functools
from pathlib import Path

import jinja2
import ploomber
import ploomber.placeholders.util as placeholder_util
import ploomber.sources.notebooksource as notebooksource
import ploomber.static_analysis.python as python_analysis
import ploomber.tasks.abc as task_abc
import ploomber.tasks.taskgroup as taskgroup
from papermill.translators import PythonTranslator, Translator
from ploomber.constants import TaskStatus

TESTED_WITH = "0.23"
if not ploomber.__version__.startswith(TESTED_WITH):
    raise ImportError(
        f"runner/ploomber_patches.py replaces internals of Ploomber {TESTED_WITH}, found {ploomber.__version__}: "
        "check each patch against the new version, then update TESTED_WITH"
    )


@functools.lru_cache(maxsize=16)
def _parsed_notebook(primitive, ext, language, kernelspec_name, check_if_kernel_installed, path):
    """The notebook of a script's text, parsed once per distinct text (jupytext and
    nbformat's validation: 12 ms for scripts/fit.py)."""
    nb = notebooksource._to_nb_obj(
        primitive,
        ext=ext,
        language=language,
        kernelspec_name=kernelspec_name,
        check_if_kernel_installed=check_if_kernel_installed,
        path=path,
    )
    nb = notebooksource._cleanup_rendered_nb(nb, print_=False)
    return notebooksource.nbformat.writes(nb, version=notebooksource.nbformat.NO_CONVERT), nb


_original_read_nb_str_unrendered = notebooksource.NotebookSource._read_nb_str_unrendered


def _read_nb_str_unrendered(self, force=False):
    # Keyed by the script's text itself (read per task, which is cheap), so an
    # edited script is parsed again; hot reload and forced reads are left as
    # they were.
    if self._nb_str_unrendered is None and not self._hot_reload and not force:
        text, nb = _parsed_notebook(
            self.primitive,
            self._ext_in,
            self._language,
            self._kernelspec_name,
            self._check_if_kernel_installed,
            self._path,
        )
        # Shared by the tasks, uncopied: Ploomber reads it, copies it before
        # injecting parameters, and only ever adds or drops empty tag lists
        # and papermill's empty metadata in it, which leaves it the same notebook.
        self._nb_str_unrendered, self._nb_obj_unrendered = text, nb
    return _original_read_nb_str_unrendered(self, force)


@functools.lru_cache(maxsize=16)
def _used_names(code):
    return frozenset(notebooksource.parso.parse(code).get_used_names())


def _warn_on_unused_params(nb, params):
    """Ploomber's warning about parameters the code never uses, with the code
    parsed once per distinct code instead of once per task."""
    _, index = notebooksource.find_cell_with_tag(nb, "parameters")
    if index is None:
        return
    code = "\n".join(c.source for i, c in enumerate(nb.cells) if c.cell_type == "code" and i != index)
    unused = set(params) - _used_names(code) - {"product"}
    if unused:
        notebooksource.warnings.warn(
            f"These parameters are not used in the task's source code: {notebooksource.pretty_print.iterable(unused)}"
        )


@classmethod
def _codify_without_black(cls, parameters, comment="Parameters"):
    # papermill runs the injected parameters cell through black when black is
    # installed (sklearn-evaluation requires it): 9 ms per task, for layout.
    # This is papermill's own output when black is absent.
    return Translator.codify.__func__(cls, parameters, comment)


@functools.lru_cache(maxsize=64)
def _assigned_code(code, name):
    """Whether `code` assigns `name`, and the code of the last value assigned."""
    found, value_code = False, None
    for statement in python_analysis._iterate_assignments(code):
        if hasattr(statement, "get_defined_names"):
            defined = statement.get_defined_names()
            if len(defined) == 1 and defined[0].value == name:
                found, value_code = True, statement.children[2].get_code()
    return found, value_code


def _extract_variable(code, name):
    """Ploomber's reading of `upstream` (or `product`) from a parameters cell,
    parsed once per distinct cell; the value is evaluated afresh for each caller."""
    found, value_code = _assigned_code(code, name)
    return found, (eval(value_code) if found else None)


@functools.lru_cache(maxsize=64)
def _grid_template(source, **options):
    # The grid's task and product names ("fit-[[model]]"), compiled once and
    # rendered once per task; rendering does not change a template.
    return jinja2.Template(source, **options)


_original_get_tags_in_str = placeholder_util.get_tags_in_str
TAG_STARTS = ("{{", "{%", "{#", "[[")  # jinja's defaults and Ploomber's runtime placeholders


def _get_tags_in_str(s, require_runtime_placeholders=True):
    # Ploomber parses every product path with jinja, twice, for the variables
    # it uses; a path with no delimiter in it has none.
    if isinstance(s, str) and not any(start in s for start in TAG_STARTS):
        return set()
    return _original_get_tags_in_str(s, require_runtime_placeholders)


_original_init_product_with_str = taskgroup._init_product_with_str


def _init_product_with_str(product_class, product_primitive, index, resolve_relative_to, params):
    """A grid task's product path, e.g. products/fit/[[model]].ipynb ->
    products/fit/RandomForestClassifier-n_estimators=10-0.ipynb, as Ploomber
    makes it, but from one template per product instead of one per task (the
    task's index was written into the template's text)."""
    if index is None:
        return _original_init_product_with_str(product_class, product_primitive, index, resolve_relative_to, params)
    path = Path(product_primitive) if resolve_relative_to is None else Path(resolve_relative_to, product_primitive).resolve()
    suffix = "".join(path.suffixes)
    filename = path.name.replace(suffix, "")
    template = _grid_template(
        str(path.parent / f"{filename}-[[ {GRID_INDEX} ]]{suffix}"), variable_start_string="[[", variable_end_string="]]"
    )
    return product_class(template.render(**params, **{GRID_INDEX: index}))


GRID_INDEX = "_ploomber_patches_grid_index"


def _get_downstream(self):
    # Ploomber scans every task of the DAG for those whose upstream holds this
    # one, each time a status changes: quadratic in the grid's size. The DAG's
    # graph knows them.
    return [self.dag[name] for name in self.dag._G.successors(self.name)]


def _update_downstream_status(self):
    """Ploomber's update of the downstream tasks' statuses after this one's
    changed, reading each downstream task's upstream statuses once instead of
    three times (Ploomber's own rules, unchanged)."""
    for task in self._get_downstream():
        statuses = {t.exec_status for t in task.upstream.values()}
        if statuses & {TaskStatus.Errored, TaskStatus.Aborted}:
            task.exec_status = TaskStatus.Aborted
        elif statuses & {TaskStatus.ErroredRender, TaskStatus.AbortedRender}:
            task.exec_status = TaskStatus.AbortedRender
        elif statuses <= {TaskStatus.Executed, TaskStatus.Skipped} and task.exec_status == TaskStatus.WaitingUpstream:
            task.exec_status = TaskStatus.WaitingExecution


notebooksource.NotebookSource._read_nb_str_unrendered = _read_nb_str_unrendered
notebooksource._warn_on_unused_params = _warn_on_unused_params
PythonTranslator.codify = _codify_without_black
python_analysis.extract_variable = _extract_variable
taskgroup.Template = _grid_template
taskgroup._init_product_with_str = _init_product_with_str
placeholder_util.get_tags_in_str = _get_tags_in_str
task_abc.Task._get_downstream = _get_downstream
task_abc.Task._update_downstream_status = _update_downstream_status
