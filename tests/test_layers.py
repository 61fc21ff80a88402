"""The modules stand in layers: a module never imports one above it, not even inside a function.

Read from the source with `ast`: nothing is imported or built.
"""
import ast
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]

# tracking/'s modules, bottom to top (the README's Layout lists the same):
# a module imports only modules of the layers below its own.
TRACKING_LAYERS = [
    ["names", "uri", "model_files", "reports"],
    ["outage"],
    ["store"],
    ["raw_model", "builds", "registry", "access"],
    ["model_code", "fit_runs", "promotion"],
    ["champion", "champion_command"],
    ["__init__"],
]
# The project's parts, bottom to top, under the same rule.
PROJECT_LAYERS = [["tasks"], ["tracking"], ["settings", "runner"], ["hooks"]]
SOURCES = ["tasks", "tracking", "runner", "settings.py", "hooks.py"]


def project_modules():
    """Dotted name -> file of every module under SOURCES; a package is named by its folder."""
    modules = {}
    for source in SOURCES:
        path = PROJECT / source
        for file in sorted(path.glob("*.py")) if path.is_dir() else [path]:
            parts = file.relative_to(PROJECT).with_suffix("").parts
            modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = file
    return modules


def import_graph():
    """Module -> the project modules it imports, at the top or inside a function."""
    modules = project_modules()
    graph = {}
    for name, file in modules.items():
        imported = set()
        for node in ast.walk(ast.parse(file.read_text(), str(file))):
            if isinstance(node, ast.Import):
                imported |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                # `from tracking import registry` imports a module, `from tracking import Champion` the package
                imported |= {f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module
                             for a in node.names}
        graph[name] = {module for module in imported if module in modules and module != name}
    return graph


def upward(graph, layers, layer_name):
    """Each import of a module from its own layer or one above, as 'importer -> imported'."""
    position = {name: index for index, layer in enumerate(layers) for name in layer}
    return sorted(
        f"{importer} -> {imported}"
        for importer, imported_modules in graph.items()
        for imported in imported_modules
        if layer_name(importer) != layer_name(imported)
        and position[layer_name(imported)] >= position[layer_name(importer)]
    )


def tracking_module(name):
    return name.removeprefix("tracking").removeprefix(".") or "__init__"


def in_a_cycle(graph):
    """The modules that reach themselves through their imports."""
    found = []
    for start in sorted(graph):
        seen, stack = set(), list(graph[start])
        while stack:
            module = stack.pop()
            if module not in seen:
                seen.add(module)
                stack.extend(graph[module])
        if start in seen:
            found.append(start)
    return found


def test_every_tracking_module_has_its_layer():
    assert sorted(p.stem for p in (PROJECT / "tracking").glob("*.py")) == sorted(sum(TRACKING_LAYERS, []))


def test_no_tracking_module_imports_one_above_it():
    graph = {name: {module for module in imported if module.split(".")[0] == "tracking"}
             for name, imported in import_graph().items() if name.split(".")[0] == "tracking"}
    assert upward(graph, TRACKING_LAYERS, tracking_module) == []


def test_no_part_of_the_project_imports_one_above_it():
    # so tasks/ imports neither tracking/ nor runner/, and tracking/ neither runner/ nor hooks.py
    assert upward(import_graph(), PROJECT_LAYERS, lambda name: name.split(".")[0]) == []


def test_no_import_cycle_in_tracking_runner_settings_and_hooks():
    graph = {name: {module for module in imported if module.split(".")[0] != "tasks"}
             for name, imported in import_graph().items() if name.split(".")[0] != "tasks"}
    assert in_a_cycle(graph) == []
