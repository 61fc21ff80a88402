"""Times the pipeline against a hand-written loop that logs the same runs.

    .venv/bin/python benchmarks/run.py [--rounds N]

Each round, on fresh stores and fresh copies of the project, it times in turn:
a cold tracked build of the default grid, the loop over that grid, a no-op
rebuild, `python -c "import ploomber"`, a cold tracked build of a 64-fit grid
and the loop over that grid. It prints the median wall time and peak memory
(PSS of the whole process tree) of each, and the ratios the project targets.
"""
import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from importlib.util import cache_from_source
from pathlib import Path

import mlflow
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from sandbox import WIDE_GRID, make_project  # noqa: E402


def measure(command, cwd):
    """Wall time (s) and peak PSS (MiB) of `command` and all its children."""
    start = time.perf_counter()
    process = psutil.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = 0
    while process.poll() is None:
        peak = max(peak, _tree_pss(process))
        time.sleep(0.05)
    elapsed = time.perf_counter() - start
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, command))} failed:\n{process.stderr.read().decode()}")
    return elapsed, peak / 2**20


def _tree_pss(process):
    total = 0
    try:
        for member in [process, *process.children(recursive=True)]:
            total += member.memory_full_info().pss
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        pass
    return total


def one_round(workdir, results):
    loop = [sys.executable, str(ROOT / "benchmarks" / "loop.py")]
    for label, grid in (("8", None), ("64", WIDE_GRID)):
        project = make_project(Path(tempfile.mkdtemp(dir=workdir)))
        if grid:
            project.set_grid(grid)
        results[f"pipeline, cold, {label} fits"].append(measure(project.build_command(), project.path))
        store = Path(tempfile.mkdtemp(dir=workdir)) / "loop.db"
        results[f"loop, {label} fits"].append(measure(loop + [project.path, f"sqlite:///{store}"], project.path))
        if not grid:
            results["pipeline, no-op rebuild"].append(measure(project.build_command(), project.path))
            results["python -c 'import ploomber'"].append(
                measure([sys.executable, "-c", "import ploomber"], workdir)
            )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    rounds = parser.parse_args().rounds

    compiled = Path(cache_from_source(mlflow.__file__)).exists()
    print(f"bytecode compiled at install: {'yes' if compiled else 'NO (imports pay for compiling)'}")
    print(f"rounds: {rounds}, cores: {psutil.cpu_count()}\n")

    results = {}
    keys = [
        "pipeline, cold, 8 fits", "loop, 8 fits", "pipeline, no-op rebuild",
        "python -c 'import ploomber'", "pipeline, cold, 64 fits", "loop, 64 fits",
    ]
    for key in keys:
        results[key] = []
    with tempfile.TemporaryDirectory() as workdir:
        for _ in range(rounds):
            one_round(workdir, results)

    wall = {key: statistics.median(t for t, _ in runs) for key, runs in results.items()}
    memory = {key: max(m for _, m in runs) for key, runs in results.items()}
    print(f"{'':32} {'wall (median)':>14} {'peak PSS':>10}")
    for key in keys:
        print(f"{key:32} {wall[key]:>12.2f} s {memory[key]:>6.0f} MiB")

    import_time = wall["python -c 'import ploomber'"]
    checks = [
        ("cold 8-fit build / loop", wall["pipeline, cold, 8 fits"] / wall["loop, 8 fits"], 1.3),
        ("cold 64-fit build / loop", wall["pipeline, cold, 64 fits"] / wall["loop, 64 fits"], 1.0),
        ("no-op rebuild / (1.5 x import ploomber + 1 s)",
         wall["pipeline, no-op rebuild"] / (1.5 * import_time + 1), 1.0),
        ("64-fit build peak PSS / 2 GiB", memory["pipeline, cold, 64 fits"] / 2048, 1.0),
    ]
    print()
    for label, ratio, limit in checks:
        print(f"{label:48} {ratio:5.2f}  (target <= {limit})  {'ok' if ratio <= limit else 'MISSED'}")


if __name__ == "__main__":
    main()
