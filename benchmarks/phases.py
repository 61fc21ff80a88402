"""Where a fit's time goes, in the pipeline and in the loop: CPU and wall time per phase.

    .venv/bin/python benchmarks/phases.py [--fits 64]
    .venv/bin/python benchmarks/phases.py --rows 100000 --columns 30 --only pipeline

Runs, one after the other in this process, the fits of a --fits grid (or, with
--rows, of the default grid on a synthetic table, benchmarks/synthetic.py) as one
pipeline worker runs them (Ploomber's serial executor, in-process, after
hooks.preflight), then benchmarks/loop.py over the same grid, each on a fresh
store, and prints per fit the CPU time (of this process) and wall time spent
in each phase. CPU time is what two workers share two cores for, whatever else
runs on the machine; wall time beyond it is waiting (for a lock, for a core).
"""
import argparse
import collections
import functools
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from sandbox import make_project, sized_grid  # noqa: E402

SPENT = collections.defaultdict(lambda: [0.0, 0.0, 0])  # phase -> [cpu, wall, calls]
TASK_CPU = []  # CPU time of each fit task in turn: does a long-lived worker slow down?


def timed(owner, attribute, phase):
    """Replace owner.attribute by a wrapper that adds its time to SPENT[phase]."""
    original = getattr(owner, attribute)

    @functools.wraps(original)
    def wrapper(*args, **kwargs):
        cpu, wall = time.process_time(), time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            spent = SPENT[phase]
            spent[0] += time.process_time() - cpu
            spent[1] += time.perf_counter() - wall
            spent[2] += 1
            if phase.startswith("task"):
                TASK_CPU.append(time.process_time() - cpu)

    setattr(owner, attribute, wrapper)


def instrument():
    import mlflow
    import ploomber.tasks.abc
    import ploomber_engine.ipython

    import tracking
    import tracking.fit_runs as fit_runs
    from tasks import charts, models

    timed(ploomber.tasks.abc.Task, "_build", "task, all of it (pipeline)")
    timed(ploomber_engine.ipython.PloomberClient, "execute", "notebook execution, all cells")
    timed(tracking, "start_fit_run", "start_fit_run")
    timed(models, "cross_validate", "cross_validate (folds and refit)")
    timed(charts, "confusion_matrix_svg", "confusion matrix")
    for method in ("log_dataset", "log_params", "log_metrics", "log_text", "log_model"):
        timed(fit_runs.TrackedRun, method, method)
    timed(fit_runs, "notebook_to_html", "report: notebook -> HTML")
    timed(mlflow, "log_text", "report: upload")
    timed(mlflow, "end_run", "end_run")


def pipeline(project, fits):
    spec = yaml.safe_load((project.path / "pipeline.yaml").read_text())
    spec["executor"] = {"dotted_path": "ploomber.executors.Serial", "build_in_subprocess": False}
    (project.path / "pipeline.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    env = yaml.safe_load((project.path / "env.yaml").read_text())
    env.update(track=True, mlflow_tracking_uri=project.tracking_uri)
    (project.path / "env.yaml").write_text(yaml.safe_dump(env))

    import os

    from ploomber.spec import DAGSpec

    from runner import ploomber_patches  # noqa: F401  (as the build's executor does)

    os.chdir(project.path)
    sys.path.insert(0, str(project.path))
    dag = DAGSpec("pipeline.yaml").to_dag()
    dag.render()  # runs hooks.preflight
    from runner import warm_up

    warm_up.warm_up_workers((project.tracking_uri, env["experiment_name"]))  # as a build does before the workers fork
    try:
        for name in dag:  # in topological order: the data, then the fits
            if name not in ("compare", "score"):
                dag[name].build(force=True)
    finally:
        os.chdir(ROOT)


def loop(project, workdir):
    import loop as benchmark_loop

    benchmark_loop.main(project.path, f"sqlite:///{Path(workdir) / 'loop.db'}")


def report(label, fits):
    print(f"\n{label}: per fit, {fits} fits")
    print(f"{'phase':36} {'CPU ms':>8} {'wall ms':>8}")
    for phase, (cpu, wall, calls) in sorted(SPENT.items(), key=lambda item: -item[1][0]):
        print(f"{phase:36} {1000 * cpu / fits:>8.0f} {1000 * wall / fits:>8.0f}")
    SPENT.clear()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fits", type=int, default=64, help="a multiple of 64")
    parser.add_argument("--only", choices=["pipeline", "loop"])
    parser.add_argument("--rows", type=int, help="the default grid on a synthetic table of this many rows")
    parser.add_argument("--columns", type=int, default=20, help="the synthetic table's raw columns (with --rows)")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "benchmarks"))
    with tempfile.TemporaryDirectory() as workdir:
        if args.rows:
            from synthetic import make_synthetic_project

            project = make_synthetic_project(Path(tempfile.mkdtemp(dir=workdir)), args.rows, args.columns, ROOT)
            args.fits = 8
        else:
            project = make_project(Path(tempfile.mkdtemp(dir=workdir)))
            project.set_grid(sized_grid(args.fits))
        sys.path.insert(0, str(project.path))  # its tasks/data.py, not this checkout's
        instrument()
        if args.only != "loop":
            cpu = time.process_time()
            pipeline(project, args.fits)
            report("pipeline (one worker)", args.fits)
            fit_cpu = TASK_CPU[-args.fits:]  # after the data tasks
            eighth = max(1, len(fit_cpu) // 8)
            print(f"CPU of the first {eighth} fits: {1000 * sum(fit_cpu[:eighth]) / eighth:.0f} ms per fit, "
                  f"of the last {eighth}: {1000 * sum(fit_cpu[-eighth:]) / eighth:.0f} ms per fit")
            print(f"process CPU, whole pipeline part: {time.process_time() - cpu:.1f} s")
        if args.only != "pipeline":
            cpu = time.process_time()
            loop(project, workdir)
            report("loop", args.fits)
            print(f"process CPU, whole loop: {time.process_time() - cpu:.1f} s")


if __name__ == "__main__":
    main()
