"""compare's side of MLflow: the leaderboard of a build's fits, compare's run, the build's summary.

The champion's rule lives in promotion.py, the alias and its history in registry.py.
"""
import shlex
from pathlib import Path

from tracking import promotion
from tracking.builds import build_identity, find_build_run, runs_of_build
from tracking.fit_runs import TrackedRun, fit_records
from tracking.names import (
    BUILD_TAG,
    CHAMPION_ALIAS,
    LEADERBOARD_CHART,
    LEADERBOARD_TABLE,
    SEARCH_RUNGS_TABLE,
    compare_experiment,
)
from tracking.raw_model import load_model
from tracking.store import client, connect, prepare_store, run_tags
from tracking.uri import redacted, resolve_tracking_uri, sqlite_path


def read_run_ids(fit_products):
    """Run ids recorded by the full fits among the fit tasks (`upstream["fit-*"]` in compare):
    not those of a halving search's earlier rungs."""
    return [record["run_id"] for record in fit_records(fit_products) if record.get("run_id") and record.get("final", True)]


def ranks_other_runs(leaderboard_path, recorded_run_ids):
    """Whether compare's last leaderboard ranks other runs than those the grid's
    fits recorded (`recorded_run_ids`, None where a fit recorded none). So it
    does when the grid went back to fits that are all up to date: Ploomber sees
    no change (it compares timestamps and code, not which tasks a wildcard
    upstream matches), and the board would still rank the other grid."""
    import csv

    path = Path(str(leaderboard_path))
    if not path.exists():
        return False  # compare is outdated anyway
    with path.open(newline="") as board:
        ranked = {row["run_id"] for row in csv.DictReader(board)}
    return ranked != {run_id for run_id in recorded_run_ids if run_id}


def leaderboard(tracking_uri, run_ids, metric):
    """The runs of this grid, best first: the cross-validated mean of `metric`
    descending, then its std ascending (the steadier model), then run name.

    The held-out `metric` is in the table but never decides the order: it is
    the unbiased estimate of the chosen model's performance.
    """
    import mlflow

    if not run_ids:
        raise ValueError("no fit run was recorded: did the build run with --env--track true?")
    connect(tracking_uri)
    quoted = ", ".join(f"'{run_id}'" for run_id in run_ids)
    runs = mlflow.search_runs(
        search_all_experiments=True,
        filter_string=f"attributes.run_id IN ({quoted})",
        order_by=[f"metrics.cv_{metric}_mean DESC", f"metrics.cv_{metric}_std ASC", "attributes.run_name ASC"],
    )
    missing = set(run_ids) - set(runs["run_id"])
    if missing:
        raise ValueError(f"runs recorded by the fits are not in {tracking_uri}: {sorted(missing)}")
    columns = ["run_id", "tags.mlflow.runName", "tags.model.family", "status"]
    columns += [c for c in runs.columns if c.startswith("metrics.")]
    board = runs[columns].rename(columns=lambda c: c.split(".")[-1])
    board = board.rename(columns={"runName": "run_name", "family": "model_family"})
    first = ["run_id", "run_name", "model_family", f"cv_{metric}_mean", f"cv_{metric}_std", metric]
    return board[first + sorted(c for c in board.columns if c not in first)]


def record_comparison(tracking_uri, experiment_name, board, metric, chart, registered_model_name,
                      min_improvement=0, evaluate=None, rungs=None):
    """Log this build's comparison as a run of its own and hold its best fit against the champion.

    The compare run holds the leaderboard as an MLflow table and `chart(decision)`,
    the figure drawn once the decision is made, as a PNG, the best run's cross-validated score (what ranked it) and its
    held-out scores (the unbiased estimate of how the champion will do; they
    never decide the ranking). With a halving search's `rungs` (tasks.halving.rungs_table),
    it also holds that table and, per rung, its candidates and survivors. The decision (tracking/promotion.py) is tagged
    on it and on the build's parent run, which also gets the leaderboard
    (every run it ranked) and a link to the compare run; a version it
    registers is tagged with those scores too. A failure on the way leaves
    the compare run FAILED. Returns the Decision and the chart as an image
    for the notebook.
    """
    import mlflow

    experiment_id = prepare_store(tracking_uri, compare_experiment(experiment_name))
    best = board.iloc[0]
    identity = build_identity()
    scores = {f"best_cv_{metric}_{stat}": float(best[f"cv_{metric}_{stat}"]) for stat in ("mean", "std")}
    # a held-out metric is one with a cross-validated counterpart
    scores |= {f"held_out_{m}": float(best[m]) for m in board.columns if f"cv_{m}_mean" in board.columns}
    with mlflow.start_run(
        experiment_id=experiment_id,
        run_name=f"compare-{metric}",
        tags={**run_tags("compare"), **({BUILD_TAG: identity} if identity else {})},
    ) as run:
        mlflow.log_params({"metric": metric, "fits": len(board), "ranked_by": f"cv_{metric}_mean",
                           "min_improvement": min_improvement})
        mlflow.log_metrics(scores)
        mlflow.log_table(board, LEADERBOARD_TABLE)
        if rungs is not None and len(rungs):
            _record_rungs(rungs)
        version_tags = {key.removeprefix("best_"): f"{value:.6g}" for key, value in scores.items()}
        decision = promotion.decide(
            tracking_uri, registered_model_name, best["run_id"], metric, min_improvement, evaluate, version_tags
        )
        image = TrackedRun(run.info.run_id).log_figure(chart(decision), LEADERBOARD_CHART)
        mlflow.set_tags({"champion.model": registered_model_name, "champion.run_id": best["run_id"], **decision.tags()})
    if (parent := find_build_run(tracking_uri)) is not None:
        record_on_build(tracking_uri, parent.info.run_id, board, run.info.run_id, registered_model_name, decision)
    return decision, image


def _record_rungs(rungs):
    """A halving search on the active (compare) run: the table of every rung's fits and, per rung,
    its resource and candidates (params) and its survivors, the candidates it kept for the next (tags)."""
    import mlflow

    mlflow.log_table(rungs, SEARCH_RUNGS_TABLE)
    params, tags = {"search.rungs": rungs["rung"].nunique()}, {}
    for rung, fits in rungs.groupby("rung"):
        params[f"search.rung{rung}.candidates"] = len(fits)
        params[f"search.rung{rung}.resource"] = fits["resource"].iloc[0]
        tags[f"search.rung{rung}.survivors"] = ", ".join(fits.loc[fits["kept"], "candidate"])[:5000]
    mlflow.log_params(params)
    mlflow.set_tags(tags)


def record_on_build(tracking_uri, parent_run_id, board, compare_run_id, registered_model_name, decision):
    """The build's summary on its parent run: the grid it ranked, the leaderboard, the decision."""
    store = client(tracking_uri)
    store.log_table(parent_run_id, board, LEADERBOARD_TABLE)
    store.log_param(parent_run_id, "grid", _grid_text(board))
    store.log_param(parent_run_id, "fits.ranked", len(board))
    tags = {"compare.run_id": compare_run_id, "champion.model": registered_model_name, **decision.tags()}
    for key, value in tags.items():
        store.set_tag(parent_run_id, key, value)
    store.log_metric(parent_run_id, f"best_cv_{decision.metric}_mean", decision.challenger.mean)


def _grid_text(board):
    counts = board["model_family"].value_counts().sort_index()
    return ", ".join(f"{family} x{count}" for family, count in counts.items())


def build_summary(tracking_uri, leaderboard_csv, top=5):
    """The lines a tracked build ends with: the top of the leaderboard, the
    champion's version and what it was before, and the command that opens the
    build's store (`tracking_uri` may be the setting's raw expression)."""
    import pandas as pd

    tracking_uri, _ = resolve_tracking_uri(tracking_uri)

    board = pd.read_csv(leaderboard_csv)
    [compare_run] = runs_of_build(tracking_uri, "compare")[-1:] or [None]
    tags = compare_run.data.tags if compare_run else {}
    metric = tags.get("champion.metric", "accuracy")
    lines = [f"Leaderboard, top {min(top, len(board))} of {len(board)} by cv_{metric}_mean (± std; held-out {metric}):"]
    for place, row in enumerate(board.head(top).itertuples(index=False), 1):
        row = row._asdict()
        lines.append(f"  {place}. {row['run_name']}  {row[f'cv_{metric}_mean']:.4f} ± {row[f'cv_{metric}_std']:.4f}"
                     f"  (held-out {row[metric]:.4f})")
    if tags.get("champion.decision"):
        was = f"version {tags['champion.replaced']}" if tags.get("champion.replaced") else "no version"
        lines.append(f"Champion: {tags['champion.model']}@{CHAMPION_ALIAS} is version {tags['champion.version']}, "
                     f"was {was} ({tags['champion.decision']}: {tags['champion.rule']})")
    if tracking_uri.startswith("sqlite:"):
        # the file alone, absolute: not the query (?timeout=) the build's connection adds
        store = f"sqlite:///{sqlite_path(tracking_uri).resolve()}"
        lines.append(f"Browse the runs: .venv/bin/mlflow ui --backend-store-uri {shlex.quote(store)} --host 127.0.0.1")
    else:
        lines.append(f"Browse the runs: {redacted(tracking_uri)}")
    return "\n".join(lines)


def load_champion(tracking_uri, registered_model_name):
    """The model that `models:/<registered_model_name>@champion` names, and its ModelVersion.

    The alias is read once and the model loaded by version number, so the
    version reported is the one that made the predictions even if another
    build moves the alias meanwhile.
    """
    version = client(tracking_uri).get_model_version_by_alias(registered_model_name, CHAMPION_ALIAS)
    return load_model(f"models:/{registered_model_name}/{version.version}", tracking_uri), version


def check_model_name(name):
    """One line naming what is wrong with a registered model's name, or None."""
    if not str(name).strip():
        return "registered_model_name is empty"
    if "/" in str(name) or ":" in str(name):
        return f"registered_model_name {name!r}: MLflow does not allow '/' or ':' in it"
    if "'" in str(name):
        return f"registered_model_name {name!r}: a quote cannot be searched for in the registry"
    return None
