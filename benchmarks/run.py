"""Times the pipeline against a hand-written loop that logs the same runs.

    .venv/bin/python benchmarks/run.py [--rounds N] [--sizes 64,256,1024] [--loop-max 256]

Each round, on fresh stores and fresh copies of the project, it times in turn:
a cold tracked build of the default grid (8 fits), the loop over that grid, a
no-op rebuild, `python -c "import ploomber"`, `ploomber status` on a 1,024-fit
grid (start-up: loading and rendering the DAG, before any work), then for each
size (64, and those of --sizes) a cold tracked build of a grid of that many
fits and, up to --loop-max fits, the loop over it. It prints the median wall
time, CPU time (user + sys, the whole process tree) and peak memory (PSS of
the whole process tree) of each, seconds per fit at each size, and the ratios
the project targets. Only ratios within one run compare: the machine's load
changes between runs.
"""
import argparse
import resource
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
from sandbox import PLOOMBER, make_project, sized_grid  # noqa: E402

STARTUP_FITS = 1024
# Reading a process's PSS costs about 3 ms of CPU: sampled every 50 ms, the
# tree of a build took a third of a core from its two workers.
PSS_EVERY_SECONDS = 0.5


def measure(command, cwd):
    """Wall time (s), CPU time (s, user + sys) and peak PSS (MiB) of `command` and all its children."""
    before = _children_cpu()
    with tempfile.TemporaryFile() as errors:  # a pipe left unread would block a build that writes much
        start = time.perf_counter()
        process = psutil.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=errors)
        peak = 0
        while True:
            peak = max(peak, _tree_pss(process))
            try:
                process.wait(timeout=PSS_EVERY_SECONDS)
                break
            except psutil.TimeoutExpired:
                pass
        elapsed = time.perf_counter() - start
        if process.returncode != 0:
            errors.seek(0)
            raise RuntimeError(f"{' '.join(map(str, command))} failed:\n{errors.read().decode()}")
    # every descendant has been waited for by its parent by now, so it counts
    return elapsed, _children_cpu() - before, peak / 2**20


def _children_cpu():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _tree_pss(process):
    total = 0
    try:
        for member in [process, *process.children(recursive=True)]:
            total += member.memory_full_info().pss
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        pass
    return total


def one_round(workdir, sizes, loop_max, results):
    loop = [sys.executable, str(ROOT / "benchmarks" / "loop.py")]

    def project_of(fits):
        project = make_project(Path(tempfile.mkdtemp(dir=workdir)))
        if fits != 8:
            project.set_grid(sized_grid(fits))
        return project

    def time_loop(project, fits):
        store = Path(tempfile.mkdtemp(dir=workdir)) / "loop.db"
        results[f"loop, {fits} fits"].append(measure(loop + [project.path, f"sqlite:///{store}"], project.path))

    project = project_of(8)
    results["pipeline, cold, 8 fits"].append(measure(project.build_command(), project.path))
    time_loop(project, 8)
    results["pipeline, no-op rebuild"].append(measure(project.build_command(), project.path))
    results["python -c 'import ploomber'"].append(measure([sys.executable, "-c", "import ploomber"], workdir))

    project = project_of(STARTUP_FITS)
    results[f"ploomber status, {STARTUP_FITS} fits"].append(measure([PLOOMBER, "status"], project.path))

    for fits in sizes:
        project = project_of(fits)
        results[f"pipeline, cold, {fits} fits"].append(measure(project.build_command(), project.path))
        if fits <= loop_max:
            time_loop(project, fits)


def sizes_option(text):
    sizes = sorted({int(size) for size in text.split(",") if size.strip()})
    if not sizes or any(size <= 0 or size % 64 for size in sizes):
        raise argparse.ArgumentTypeError(f"{text!r}: expected fit counts that are multiples of 64, e.g. 64,256,1024")
    return sizes


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--sizes", type=sizes_option, default=[], help="grid sizes to time besides 64, e.g. 64,256,1024")
    parser.add_argument("--loop-max", type=int, default=256, help="time the loop only on grids up to this many fits")
    args = parser.parse_args()
    sizes = sorted({64, *args.sizes})

    compiled = Path(cache_from_source(mlflow.__file__)).exists()
    print(f"bytecode compiled at install: {'yes' if compiled else 'NO (imports pay for compiling)'}")
    print(f"rounds: {args.rounds}, cores: {psutil.cpu_count()}, sizes: {', '.join(map(str, sizes))}\n")

    keys = [
        "pipeline, cold, 8 fits", "loop, 8 fits", "pipeline, no-op rebuild",
        "python -c 'import ploomber'", f"ploomber status, {STARTUP_FITS} fits",
    ]
    for fits in sizes:
        keys += [f"pipeline, cold, {fits} fits"] + ([f"loop, {fits} fits"] if fits <= args.loop_max else [])
    results = {key: [] for key in keys}
    with tempfile.TemporaryDirectory() as workdir:
        for _ in range(args.rounds):
            one_round(workdir, sizes, args.loop_max, results)

    wall = {key: statistics.median(t for t, _, _ in runs) for key, runs in results.items()}
    cpu = {key: statistics.median(c for _, c, _ in runs) for key, runs in results.items()}
    memory = {key: max(m for _, _, m in runs) for key, runs in results.items()}
    print(f"{'':32} {'wall (median)':>14} {'CPU (median)':>13} {'peak PSS':>10}")
    for key in keys:
        print(f"{key:32} {wall[key]:>12.2f} s {cpu[key]:>11.2f} s {memory[key]:>6.0f} MiB")

    print(f"\n{'seconds per fit (wall)':32} {'pipeline':>10} {'loop':>10}")
    for fits in sizes:
        loop = f"{wall[f'loop, {fits} fits'] / fits:>10.3f}" if fits <= args.loop_max else f"{'-':>10}"
        print(f"{fits:>6} fits{'':22} {wall[f'pipeline, cold, {fits} fits'] / fits:>10.3f} {loop}")

    import_time = wall["python -c 'import ploomber'"]
    largest = sizes[-1]
    checks = [
        ("cold 8-fit build / loop", wall["pipeline, cold, 8 fits"] / wall["loop, 8 fits"], 0.9),
        ("cold 64-fit build / loop", wall["pipeline, cold, 64 fits"] / wall["loop, 64 fits"], 0.6),
        (f"status at {STARTUP_FITS} fits / (import ploomber + 5 s)",
         wall[f"ploomber status, {STARTUP_FITS} fits"] / (import_time + 5), 1.0),
        ("no-op rebuild / (1.5 x import ploomber + 1 s)",
         wall["pipeline, no-op rebuild"] / (1.5 * import_time + 1), 1.0),
        (f"{largest}-fit build peak PSS / 2 GiB", memory[f"pipeline, cold, {largest} fits"] / 2048, 1.0),
    ]
    print()
    for label, ratio, limit in checks:
        print(f"{label:48} {ratio:5.2f}  (target <= {limit})  {'ok' if ratio <= limit else 'MISSED'}")


if __name__ == "__main__":
    main()
