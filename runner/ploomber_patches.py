"""Patches to Ploomber 0.23 that make loading a large grid cost one parse, not one per task.

Loading a 1,024-fit grid took 23 s, about 20 ms per fit task, before any work
started, on every build, status or no-op rebuild. Per task, Ploomber parsed
scripts/fit.py with jupytext, parsed its parameters cell with parso to find
`upstream`, parsed its code again to warn about unused parameters, compiled
the same name and product templates of pipeline.yaml and each product path,
injected the parameters into a copy of the notebook and wrote it to JSON
(validating it twice), formatted the injected cell with black, formatted
each row of the status table twice and, each time a task's status changed,
scanned every task of the DAG for its downstream ones and every upstream
task of those (compare has 1,024). Only the layout of the injected cell
changes, and the rendered notebook is now made in the worker that runs it.
Ploomber has no hook for any of it, so the functions are replaced here, each
by one that returns what the original returns.

runner/executor.py imports this module: pipeline.yaml names that executor, and
Ploomber imports it before it builds any task, in every command that loads
the pipeline (build, status, task, nb, and soopervisor's jobs).

One patch extends Ploomber instead (`_process_tasks`): a grid task whose
`model` spec lists `after` (the names of other specs) runs after those
tasks. A notebook's `upstream` is the same for every task of its script, so
successive halving's rungs get their order this way, as edges of the DAG
that status, plot, resume and soopervisor's export all see.
"""
import functools
from pathlib import Path

import jinja2
import ploomber
import ploomber.placeholders.placeholder as placeholder
import ploomber.placeholders.util as placeholder_util
import ploomber.sources.notebooksource as notebooksource
import ploomber.spec.dagspec as dagspec
import ploomber.static_analysis.python as python_analysis
import ploomber.tasks.abc as task_abc
import ploomber.table as table
import ploomber.tasks.taskgroup as taskgroup
from jinja2 import defaults as jinja_defaults
from papermill.parameterize import parameterize_notebook
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


_original_render = notebooksource.NotebookSource._render
_original_nb_str_rendered = notebooksource.NotebookSource.nb_str_rendered
RENDER_WHEN_READ = "<rendered when first read>"


def _render_when_read(self):
    """Ploomber's render of a notebook task with the rendered notebook made when
    it is first read (in the task's worker), not for every task at load.

    Injecting the parameters copied the whole notebook, validated the new cell
    and wrote the notebook to JSON with a second validation: 3 ms a task, which
    every `ploomber status` paid 1,024 times and a build paid serially before
    its workers started. The checks Ploomber makes at render still happen here.
    """
    if self._hot_reload or self.static_analysis == "strict":
        return _original_render(self)  # both read the rendered notebook at once
    _, nb = self._read_nb_str_unrendered()
    if nb.cells and "parameters" in notebooksource._get_last_cell(nb).metadata.get("tags", []):
        return _original_render(self)  # raises Ploomber's error about the misplaced cell
    self._nb_str_rendered = RENDER_WHEN_READ
    self._post_render_validation()


def _rendered_notebook_text(self):
    """The middle of Ploomber's NotebookSource._render: parameters injected, as JSON."""
    _, nb = self._read_nb_str_unrendered()
    for cell in nb.cells:
        if not hasattr(cell.metadata, "tags"):
            cell.metadata["tags"] = []
    nb.metadata["papermill"] = dict()
    nb = parameterize_notebook(notebooksource.deepcopy(nb), self._params)
    for cell in nb.cells:
        if not len(cell.metadata["tags"]):
            cell.metadata.pop("tags")
    return notebooksource.nbformat.writes(nb)


def _finish_render(self):
    if self._nb_str_rendered is RENDER_WHEN_READ:
        self._nb_str_rendered = _rendered_notebook_text(self)


@property
def _nb_str_rendered(self):
    _finish_render(self)
    return _original_nb_str_rendered.fget(self)


_original_check_notebook = notebooksource.NotebookSource._check_notebook


def _check_notebook(self, raise_, check_signature):
    # the one reader of the rendered notebook besides the property: NotebookRunner.run's checks
    _finish_render(self)
    return _original_check_notebook(self, raise_, check_signature)


_original_needs_render = placeholder.Placeholder._needs_render
_original_render_placeholder = placeholder.Placeholder.render


def _needs_render(self):
    # Ploomber compiles each product path with jinja to read the delimiters of
    # jinja's default environment (0.4 ms a path); a path with no loader uses those.
    if self._loader_init is not None or self._hot_reload:
        return _original_needs_render(self)
    raw = self._raw
    return (jinja_defaults.VARIABLE_START_STRING in raw and jinja_defaults.VARIABLE_END_STRING in raw) or (
        jinja_defaults.BLOCK_START_STRING in raw and jinja_defaults.BLOCK_END_STRING in raw
    )


def _is_jinja_literal(raw):
    """Whether jinja's default environment renders `raw` as it is: no delimiter,
    and no newline it would change (it drops a final one, converts \r\n)."""
    return not any(start in raw for start in TAG_STARTS) and not raw.endswith("\n") and "\r" not in raw


def _render_placeholder(self, params, optional=None, required=None):
    # Rendering a product path compiled it with jinja first (0.4 ms a path,
    # two paths a fit task), though a path with nothing to fill in renders as itself.
    plain = self._loader_init is None and not self._hot_reload and _is_jinja_literal(self._raw)
    if not plain or set(params) - set(optional or ()):  # unused params: Ploomber's error
        return _original_render_placeholder(self, params, optional, required)
    self._str = self._raw
    return self._str


def _set_row_mapping(self, mapping):
    # A task's status row, formatted as text and HTML when made: 1.2 ms a task
    # for `ploomber status`, which reads neither (its table formats the rows'
    # values). Formatted when asked for instead.
    self._mapping = mapping
    self._formatted = {}


def _formatted_row(tablefmt):
    def formatted(self):
        if tablefmt not in self._formatted:
            self._formatted[tablefmt] = table.tabulate([self._mapping], headers="keys", tablefmt=tablefmt)
        return self._formatted[tablefmt]

    return formatted


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
    # installed (a user may have it): 9 ms per task, for layout.
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
    three times (Ploomber's own rules, unchanged).

    A task set to WaitingRender changes none: only DAG.render's first step sets
    it (and a task's constructor, before it has edges), to every task in
    topological order, so each downstream task is reset after its upstream
    ones. Skipping it saves 1,024 reads of compare's 1,024 upstream statuses.
    """
    if self._exec_status == TaskStatus.WaitingRender:
        return
    graph = self.dag._G
    for name in graph.successors(self.name):
        task = graph.nodes[name]["task"]
        statuses = {graph.nodes[up]["task"]._exec_status for up in graph.predecessors(name)}
        if statuses & {TaskStatus.Errored, TaskStatus.Aborted}:
            task.exec_status = TaskStatus.Aborted
        elif statuses & {TaskStatus.ErroredRender, TaskStatus.AbortedRender}:
            task.exec_status = TaskStatus.AbortedRender
        elif statuses <= {TaskStatus.Executed, TaskStatus.Skipped} and task.exec_status == TaskStatus.WaitingUpstream:
            task.exec_status = TaskStatus.WaitingExecution


_original_process_tasks = dagspec.process_tasks


def _process_tasks(dag, dag_spec, root_path=None):
    """Ploomber's making of the tasks from pipeline.yaml, then the `after` edges."""
    _original_process_tasks(dag, dag_spec, root_path=root_path)
    add_after_edges(dag)


def add_after_edges(dag):
    """Each task whose params' `model` lists `after` gets the tasks of those specs as upstream."""
    specs = {name: dag[name].params.get("model") for name in dag}
    task_of_spec = {spec["name"]: name for name, spec in specs.items() if isinstance(spec, dict) and "name" in spec}
    for name, spec in specs.items():
        for before in spec.get("after", ()) if isinstance(spec, dict) else ():
            if before not in task_of_spec:
                raise dagspec.DAGSpecInitializationError(f"Task {name!r} runs after {before!r}, which no task is")
            dag[name].set_upstream(dag[task_of_spec[before]])


dagspec.process_tasks = _process_tasks
notebooksource.NotebookSource._read_nb_str_unrendered = _read_nb_str_unrendered
notebooksource._warn_on_unused_params = _warn_on_unused_params
PythonTranslator.codify = _codify_without_black
python_analysis.extract_variable = _extract_variable
taskgroup.Template = _grid_template
taskgroup._init_product_with_str = _init_product_with_str
placeholder_util.get_tags_in_str = _get_tags_in_str
task_abc.Task._get_downstream = _get_downstream
task_abc.Task._update_downstream_status = _update_downstream_status
notebooksource.NotebookSource._render = _render_when_read
notebooksource.NotebookSource.nb_str_rendered = _nb_str_rendered
notebooksource.NotebookSource._check_notebook = _check_notebook
placeholder.Placeholder._needs_render = _needs_render
placeholder.Placeholder.render = _render_placeholder
table.Row._set_mapping = _set_row_mapping
table.Row.__str__ = _formatted_row("simple")
table.Row._repr_html_ = _formatted_row("html")
