"""runner/ploomber_patches.py: Ploomber makes the same DAG of the grid with the patches as without."""
import json
import subprocess
import sys

import yaml

from sandbox import make_project, sized_grid

# What Ploomber makes of pipeline.yaml: every task's product, upstream and
# downstream tasks, status, params and rendered notebook (the injected
# parameters by value: only their layout may differ), and `ploomber status`'s table.
DESCRIBE = r"""
import json
import nbformat
from ploomber.spec import DAGSpec

dag = DAGSpec("pipeline.yaml").to_dag()
dag.render(show_progress=False)
described = {"patched": "runner.ploomber_patches" in __import__("sys").modules}
for name in dag:
    task = dag[name]
    entry = {
        "product": repr(task.product),
        "upstream": sorted(task.upstream),
        "downstream": sorted(t.name for t in task._get_downstream()),
        "status": task.exec_status.name,
        "params": task.params.to_json_serializable(params_only=True),
    }
    if hasattr(task.source, "nb_str_rendered"):
        cells = nbformat.reads(task.source.nb_str_rendered, as_version=4).cells
        injected = [c for c in cells if "injected-parameters" in c.metadata.get("tags", [])]
        values = {}
        exec(injected[0].source, values)
        entry["injected"] = {k: v for k, v in values.items() if not k.startswith("__")}
        entry["cells"] = [(c.cell_type, c.source, c.metadata) for c in cells if c not in injected]
    described[name] = entry
described["status table"] = str(dag.status())
print(json.dumps(described, default=str))
"""


def describe(project):
    result = subprocess.run(
        [sys.executable, "-c", DESCRIBE], cwd=project.path, capture_output=True, text=True, check=True
    )
    return json.loads(result.stdout)


def test_the_patches_change_nothing_ploomber_makes(tmp_path):
    # folder names of one length, so that the status table wraps its paths alike
    for folder in ("patched", "without"):
        (tmp_path / folder).mkdir()
    patched = make_project(tmp_path / "patched")
    patched.set_grid(sized_grid(64))
    unpatched = make_project(tmp_path / "without")
    unpatched.set_grid(sized_grid(64))
    spec = yaml.safe_load((unpatched.path / "pipeline.yaml").read_text())
    spec["executor"] = "parallel"  # Ploomber's own: runner/executor.py, which loads the patches, is not imported
    (unpatched.path / "pipeline.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))

    with_patches, without = describe(patched), describe(unpatched)

    assert with_patches.pop("patched") and not without.pop("patched")
    assert len(with_patches) == 64 + 6 + 1  # the tasks and the status table
    # the same tasks, products, dependencies, notebooks and table, up to the project folder's name
    assert json.loads(json.dumps(with_patches).replace("/patched/", "/x/")) == json.loads(
        json.dumps(without).replace("/without/", "/x/")
    )
