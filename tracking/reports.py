"""Executed notebooks as HTML reports, attached to their runs."""
import functools


def notebook_to_html(notebook_path):
    """The executed notebook as HTML, code cells hidden: a report to read."""
    import nbformat

    body, _ = html_exporter().from_notebook_node(nbformat.read(str(notebook_path), as_version=4))
    return body


@functools.cache
def html_exporter():
    # one per process: building it compiles the templates, a third of a second
    from nbconvert import HTMLExporter

    return HTMLExporter(exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True)
