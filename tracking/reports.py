"""Executed notebooks as HTML reports, attached to their runs.

A report is self-contained and small (REPORT_SIZE_LIMIT): the template in
report_templates/report inlines a few lines of style instead of JupyterLab's
stylesheet, and loads no script, font or stylesheet from anywhere. Outputs
whose HTML would load something from outside (scikit-learn's estimator
diagram: a script, links to its documentation) are shown as their plain text.
"""
import functools
import re
from pathlib import Path

REPORT_SIZE_LIMIT = 60 * 1024
TEMPLATES = Path(__file__).resolve().parent / "report_templates"
# a script, or an address outside the document (an http(s):// or //host URL)
LOADS_FROM_OUTSIDE = re.compile(r"<script|(?:src|href)\s*=\s*[\"']?\s*(?:https?:)?//|url\(\s*[\"']?\s*(?:https?:)?//", re.I)


def notebook_to_html(notebook_path, title=None):
    """The executed notebook as HTML, code cells hidden: a report to read,
    titled `title` (the run's name; by default the notebook's file name)."""
    import nbformat

    notebook = nbformat.read(str(notebook_path), as_version=4)
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            _plain_text_if_it_loads_from_outside(output)
    resources = {"report_title": title or Path(str(notebook_path)).stem}
    body, _ = html_exporter().from_notebook_node(notebook, resources=resources)
    return body


def _plain_text_if_it_loads_from_outside(output):
    data = output.get("data", {})
    if "text/plain" in data and LOADS_FROM_OUTSIDE.search(str(data.get("text/html", ""))):
        del data["text/html"]


@functools.cache
def html_exporter():
    # one per process: building it compiles the templates, a third of a second
    from nbconvert import HTMLExporter
    from nbconvert.exporters.templateexporter import TemplateExporter
    from nbconvert.filters.highlight import Highlight2HTML
    from nbconvert.filters.widgetsdatatypefilter import WidgetsDataTypeFilter

    class ReportExporter(HTMLExporter):
        """HTMLExporter without its last step, which parses the page it has just
        written with BeautifulSoup to add alt text to images and tab stops to
        JupyterLab's cells: 40% of a report's time. The report's images have
        their own alt text (TrackedRun.log_figure) and it has no such cells."""

        def from_notebook_node(self, nb, resources=None, **kw):
            resources = self._init_resources(resources)
            self.register_filter("highlight_code", Highlight2HTML(pygments_lexer="ipython3", parent=self))
            self.register_filter(
                "filter_data_type",
                WidgetsDataTypeFilter(notebook_metadata=self._nb_metadata, parent=self, resources=resources),
            )
            return TemplateExporter.from_notebook_node(self, nb, resources, **kw)

    return ReportExporter(
        extra_template_basedirs=[str(TEMPLATES)],
        template_name="report",
        exclude_input=True,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
        optimistic_validation=True,  # the notebook checked once, not after each of a dozen preprocessors
    )
