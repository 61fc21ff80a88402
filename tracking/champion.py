"""compare's side of MLflow: the leaderboard of a build's fits, the registry and the alias `champion`."""
import json
from dataclasses import dataclass
from pathlib import Path

from tracking.model_files import load_model
from tracking.names import CHAMPION_ALIAS, LEADERBOARD_CHART, LEADERBOARD_TABLE, MODEL_ARTIFACT
from tracking.store import client, connect, prepare_store, run_tags


@dataclass
class Champion:
    """The registered model version that the alias `champion` points at."""

    name: str
    version: str
    run_id: str
    previous_version: str | None  # where the alias pointed before, None if nowhere


def read_run_ids(fit_products):
    """Run ids recorded by the fit tasks (`upstream["fit-*"]` in compare)."""
    ids = [json.loads(Path(str(p["run"])).read_text())["run_id"] for p in fit_products.values()]
    return [run_id for run_id in ids if run_id]


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


def compare_experiment(experiment_name):
    """The experiment of compare's runs: beside the fits', so that every run
    listed in the fits' experiment is a model of the grid."""
    return f"{experiment_name}-compare"


def record_comparison(tracking_uri, experiment_name, board, metric, chart, registered_model_name):
    """Log this build's comparison as a run of its own and crown its best fit.

    The compare run holds the leaderboard as an MLflow table and `chart` as a
    PNG, the best run's cross-validated score (what ranked it) and its
    held-out scores (the unbiased estimate of how the champion will do; they
    never decide the ranking). The best run's model becomes the champion of
    `registered_model_name` (see `crown`); its version is tagged with those
    scores too. A failure on the way leaves the compare run FAILED.
    Returns the Champion and the chart as an image for the notebook.
    """
    import mlflow

    from tracking.fit_runs import TrackedRun

    experiment_id = prepare_store(tracking_uri, compare_experiment(experiment_name))
    best = board.iloc[0]
    scores = {f"best_cv_{metric}_{stat}": float(best[f"cv_{metric}_{stat}"]) for stat in ("mean", "std")}
    # a held-out metric is one with a cross-validated counterpart
    scores |= {f"held_out_{m}": float(best[m]) for m in board.columns if f"cv_{m}_mean" in board.columns}
    with mlflow.start_run(
        experiment_id=experiment_id,
        run_name=f"compare-{metric}",
        tags=run_tags("compare"),
    ) as run:
        mlflow.log_params({"metric": metric, "fits": len(board), "ranked_by": f"cv_{metric}_mean"})
        mlflow.log_metrics(scores)
        mlflow.log_table(board, LEADERBOARD_TABLE)
        image = TrackedRun(run.info.run_id).log_figure(chart, LEADERBOARD_CHART)
        champion = crown(tracking_uri, registered_model_name, best["run_id"])
        registry = client(tracking_uri)
        for key, value in scores.items():
            registry.set_model_version_tag(champion.name, champion.version, key.removeprefix("best_"), f"{value:.6g}")
        mlflow.set_tags(
            {"champion.model": champion.name, "champion.version": champion.version, "champion.run_id": champion.run_id}
        )
    return champion, image


def crown(tracking_uri, registered_model_name, run_id):
    """Point the alias `champion` of `registered_model_name` at the model of `run_id`.

    The run's model is registered as a new version only if no version holds it
    yet, so comparing the same runs again changes nothing. Earlier versions
    stay in the registry; only the alias moves.
    """
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST, ErrorCode

    registry = client(tracking_uri)
    try:
        previous = registry.get_registered_model(registered_model_name).aliases.get(CHAMPION_ALIAS)
    except MlflowException as error:
        if error.error_code != ErrorCode.Name(RESOURCE_DOES_NOT_EXIST):
            raise
        previous = None
    registered = registry.search_model_versions(f"name = '{registered_model_name}' and run_id = '{run_id}'")
    if registered:
        version = min(registered, key=lambda v: int(v.version)).version
    else:
        version = _register(registry, registered_model_name, run_id).version
    if previous is None or str(previous) != str(version):
        registry.set_registered_model_alias(registered_model_name, CHAMPION_ALIAS, version)
    return Champion(registered_model_name, str(version), run_id, None if previous is None else str(previous))


def _register(registry, registered_model_name, run_id):
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import RESOURCE_ALREADY_EXISTS, ErrorCode

    experiment_id = registry.get_run(run_id).info.experiment_id
    [model] = registry.search_logged_models(
        experiment_ids=[experiment_id], filter_string=f"source_run_id = '{run_id}' AND name = '{MODEL_ARTIFACT}'"
    )
    try:
        registry.create_registered_model(
            registered_model_name, description=f"The best model of a grid; the alias '{CHAMPION_ALIAS}' marks the current one."
        )
    except MlflowException as error:
        if error.error_code != ErrorCode.Name(RESOURCE_ALREADY_EXISTS):
            raise
    return registry.create_model_version(
        registered_model_name, source=model.model_uri, run_id=run_id, model_id=model.model_id
    )


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
