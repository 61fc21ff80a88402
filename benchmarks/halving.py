"""Successive halving against the full search, on a synthetic table.

    .venv/bin/python benchmarks/halving.py [--rows 20000] [--columns 20] [--candidates 81] [--rounds 1]

Two copies of the project on the same `make_classification` table (the
own-data recipe, benchmarks/synthetic.py) and the same sampled entry of
`--candidates` HistGradientBoostingClassifier candidates: one builds them all
on every training row, the other with `--env--halving true` (n_samples,
factor 3). Each round times the two in turn on fresh stores, as whole process
trees (wall and CPU seconds). Then it prints each search's best
cross-validated score (compare's leaderboard) and what scikit-learn's
RandomizedSearchCV and HalvingRandomSearchCV pick on the same candidates and
folds. Only ratios within one run compare: the machine's load changes.
"""
import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from run import measure  # noqa: E402
from synthetic import make_synthetic_project  # noqa: E402

SEED, FOLDS, TEST_SIZE, FACTOR = 42, 5, 0.3, 3
MODEL = "sklearn.ensemble.HistGradientBoostingClassifier"
SPACE = {
    "learning_rate": "loguniform(0.01, 1.0)",
    "max_depth": "randint(2, 12)",
    "l2_regularization": [0.0, 0.1, 1.0],
}


def entry(candidates):
    return {"model": MODEL, "n_candidates": candidates, **SPACE}


def best_of(project):
    """compare's best run: (candidate name, cross-validated accuracy)."""
    board = pd.read_csv(project.path / "products" / "leaderboard.csv")
    return board.iloc[0]["run_name"], float(board.iloc[0]["cv_accuracy_mean"])


def scikit_learn_picks(project, candidates):
    """The candidates RandomizedSearchCV and HalvingRandomSearchCV pick, on the
    same training split, folds and sampled space: {search: (params, cv accuracy)}."""
    from sklearn.experimental import enable_halving_search_cv  # noqa: F401
    from sklearn.model_selection import HalvingRandomSearchCV, RandomizedSearchCV, StratifiedKFold

    from tasks import models, search

    table = pd.read_parquet(project.path / "products" / "features.parquet")
    X_train, _, y_train, _ = models.split(table, "target", TEST_SIZE, SEED)
    space = {name: value if isinstance(value, list) else value.frozen()
             for name, value in ((n, search.distribution(MODEL, n, v)) for n, v in SPACE.items())}
    estimator = models.build({"class": MODEL, "params": {}}, SEED)
    folds = StratifiedKFold(n_splits=FOLDS, shuffle=True, random_state=SEED)
    searches = {
        "RandomizedSearchCV": RandomizedSearchCV(
            estimator, space, n_iter=candidates, cv=folds, random_state=SEED, refit=False, n_jobs=2),
        "HalvingRandomSearchCV": HalvingRandomSearchCV(
            estimator, space, n_candidates=candidates, factor=FACTOR, cv=folds, random_state=SEED, refit=False,
            n_jobs=2),
    }
    picks = {}
    for name, searcher in searches.items():
        wall, cpu = time.perf_counter(), _tree_cpu()
        searcher.fit(X_train, y_train)
        picks[name] = (searcher.best_params_, float(searcher.best_score_), time.perf_counter() - wall, _tree_cpu() - cpu)
    return picks


def _tree_cpu():
    """CPU seconds (user + sys) of this process and its live children: scikit-learn's
    worker processes stay up from one search to the next, so differences count their work."""
    import psutil

    me = psutil.Process()
    processes = [me, *me.children(recursive=True)]
    total = 0.0
    for process in processes:
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--columns", type=int, default=20)
    parser.add_argument("--candidates", type=int, default=81)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()

    searches = {"full search": [], "successive halving": []}
    times = {name: [] for name in searches}
    with tempfile.TemporaryDirectory() as workdir:
        for _ in range(args.rounds):
            for name in searches:
                project = make_synthetic_project(Path(tempfile.mkdtemp(dir=workdir)), args.rows, args.columns, ROOT)
                project.set_grid([entry(args.candidates)])
                halving = ["--env--halving", "true"] if name == "successive halving" else []
                times[name].append(measure(project.build_command(*halving), project.path))
                searches[name].append(best_of(project))
        picks = scikit_learn_picks(project, args.candidates)

    print(f"{args.candidates} sampled candidates of {MODEL.rsplit('.', 1)[1]}, a {args.rows} x {args.columns} "
          f"table, {args.rounds} round(s), medians\n")
    print(f"{'':20} {'wall':>9} {'CPU':>9} {'peak PSS':>9}  best (cv accuracy)")
    for name, runs in times.items():
        wall, cpu = (statistics.median(r[i] for r in runs) for i in (0, 1))
        candidate, score = searches[name][-1]
        print(f"{name:20} {wall:>7.1f} s {cpu:>7.1f} s {max(r[2] for r in runs):>5.0f} MiB  {score:.4f} {candidate}")
    ratio = statistics.median(h[0] / f[0] for h, f in zip(times["successive halving"], times["full search"]))
    cpu_ratio = statistics.median(h[1] / f[1] for h, f in zip(times["successive halving"], times["full search"]))
    gap = searches["full search"][-1][1] - searches["successive halving"][-1][1]
    print(f"\nhalving / full search: {ratio:.2f} wall, {cpu_ratio:.2f} CPU (target <= 0.4); "
          f"best score {gap:+.4f} below the full search's (target <= 0.01)")
    for name, (params, score, wall, cpu) in picks.items():
        print(f"scikit-learn {name}: {score:.4f} {params}, {wall:.1f} s, {cpu:.1f} s CPU")
    ratio = picks["HalvingRandomSearchCV"][2] / picks["RandomizedSearchCV"][2]
    cpu_ratio = picks["HalvingRandomSearchCV"][3] / picks["RandomizedSearchCV"][3]
    print(f"scikit-learn's halving / its full search: {ratio:.2f} wall, {cpu_ratio:.2f} CPU (the same candidates, no tracking)")


if __name__ == "__main__":
    main()
