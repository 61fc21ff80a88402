"""The champion moves only when beaten: this build's best against the current champion, on equal terms.

The challenger (the leaderboard's first run) takes the alias only if its
cross-validated mean of the compared metric beats the champion's by more
than `min_improvement`; on a tie the champion stays. The champion's scores
are its logged ones when it was scored on the same training data (dataset
digest) and the same folds (cv_folds, seed, test_size); otherwise its
configuration is cross-validated again on this build's folds, as a run of the
build. If the model's input columns or the target changed, or the champion
ships other feature code (tasks/data.py, tasks/rows.py) than the project's,
which tracking.load_model refuses, the two cannot be compared and the
challenger wins. Only a promoted challenger becomes a
registered version.
"""
import json
from dataclasses import dataclass

from tracking import raw_model, registry
from tracking.builds import PARENT_TAG
from tracking.names import BUILD_TAG, ROLE_TAG
from tracking.store import client, connect, source_tags

SPLIT_PARAMS = ("cv.folds", "split.seed", "split.test_size")


@dataclass
class Standing:
    """A run's score in a decision: cross-validated mean and std, and the held-out score."""

    run_id: str
    run_name: str
    mean: float
    std: float
    held_out: float

    def text(self):
        return f"{self.mean:.4f} ± {self.std:.4f} (held-out {self.held_out:.4f})"


@dataclass
class Decision:
    outcome: str  # "first champion", "promoted" or "kept"
    rule: str  # the sentence that decided
    metric: str
    challenger: Standing
    champion: Standing | None  # the champion before the decision
    version: str  # where the alias points after the decision
    replaced: str | None  # where it pointed before

    @property
    def challenger_was_champion(self):
        """This build's best run was the champion already."""
        return self.champion is not None and self.champion.run_id == self.challenger.run_id

    def tags(self):
        tags = {"champion.decision": self.outcome, "champion.rule": self.rule, "champion.metric": self.metric,
                "champion.version": self.version, "champion.replaced": self.replaced or "",
                "champion.challenger": f"{self.challenger.run_name}: {self.challenger.text()}"}
        if self.champion is not None:
            tags["champion.incumbent"] = f"{self.champion.run_name}: {self.champion.text()}"
        return tags


def decide(tracking_uri, registered_model_name, challenger_run_id, metric, min_improvement, evaluate, version_tags=None):
    """Hold the challenger against the champion and move the alias if it wins; returns the Decision.

    `evaluate(spec)` cross-validates a configuration on this build's folds and
    scores it on its held-out split: {cv_M_mean, cv_M_std, M} (models.rescore).
    `version_tags` (the challenger's scores) go on a version it registers.
    """
    store = client(tracking_uri)
    challenger_run = store.get_run(challenger_run_id)
    challenger = standing(challenger_run, metric)
    current = registry.current_version(tracking_uri, registered_model_name)
    if current is None:
        return _promote(tracking_uri, registered_model_name, "first champion",
                        "there was no champion", metric, challenger, None, None, version_tags)
    champion_run = store.get_run(store.get_model_version(registered_model_name, current).run_id)
    if champion_run.info.run_id == challenger_run_id:
        champion = standing(champion_run, metric)
        return Decision("kept", "this build's best run is the champion already", metric, challenger, champion, current, current)
    if reason := incomparable(tracking_uri, champion_run, challenger_run):
        return _promote(tracking_uri, registered_model_name, "promoted",
                        f"the champion cannot be compared: {reason}", metric, challenger, None, current, version_tags)
    if same_folds(champion_run, challenger_run) and f"cv_{metric}_mean" in champion_run.data.metrics:
        champion, on = standing(champion_run, metric), "its logged scores, on the same data and folds"
    else:
        spec = {"class": champion_run.data.tags["model.class"], "params": json.loads(champion_run.data.tags["model.params"])}
        settings = {p: challenger_run.data.params.get(p, "") for p in SPLIT_PARAMS}
        evaluation = record_evaluation(tracking_uri, challenger_run.info.experiment_id, champion_run, spec,
                                       evaluate(spec), settings)
        champion = standing(evaluation, metric)
        on = f"re-evaluated on this build's folds, run {evaluation.info.run_id}"
    needed = champion.mean + float(min_improvement)
    margin = f"min_improvement {float(min_improvement):g}"
    if challenger.mean > needed:
        rule = f"cv_{metric}_mean {challenger.mean:.4f} beats the champion's {champion.mean:.4f} ({on}) by more than {margin}"
        return _promote(tracking_uri, registered_model_name, "promoted", rule, metric, challenger, champion, current, version_tags)
    rule = f"cv_{metric}_mean {challenger.mean:.4f} does not beat the champion's {champion.mean:.4f} ({on}) by more than {margin}"
    return Decision("kept", rule, metric, challenger, champion, current, current)


def standing(run, metric):
    metrics = run.data.metrics
    return Standing(run.info.run_id, run.info.run_name, metrics.get(f"cv_{metric}_mean", float("nan")),
                    metrics.get(f"cv_{metric}_std", float("nan")), metrics.get(metric, float("nan")))


def incomparable(tracking_uri, champion_run, challenger_run):
    """Why the two runs' models cannot be compared (other input columns or target), or None."""
    champion_target = champion_run.data.tags.get("data.target")
    challenger_target = challenger_run.data.tags.get("data.target")
    if champion_target != challenger_target:
        return f"the target changed ({champion_target} -> {challenger_target})"
    champion_columns, challenger_columns = (input_columns(tracking_uri, r) for r in (champion_run, challenger_run))
    if champion_columns != challenger_columns:
        return f"the input columns changed ({', '.join(champion_columns)} -> {', '.join(challenger_columns)})"
    if changed := changed_feature_code(tracking_uri, champion_run):
        return f"it computes its features with another {changed} than this project's, so it cannot be loaded here"
    if "model.params" not in champion_run.data.tags:
        return "the champion's configuration was not recorded, so it cannot be trained again"
    return None


def logged_model(tracking_uri, run):
    [model] = client(tracking_uri).search_logged_models(
        experiment_ids=[run.info.experiment_id], filter_string=f"source_run_id = '{run.info.run_id}'"
    )
    return model


def input_columns(tracking_uri, run):
    """The columns the run's logged model takes, from its signature."""
    from mlflow.models import get_model_info

    return get_model_info(logged_model(tracking_uri, run).model_uri).signature.inputs.input_names()


def changed_feature_code(tracking_uri, run):
    """The file of tasks/ that the run's logged model ships unlike this project's, or None
    (tracking.load_model refuses such a model, so score could not use it as the champion)."""
    import tempfile

    import mlflow

    connect(tracking_uri)  # an mlflow-artifacts: location resolves through the global URI
    shipped = f"{logged_model(tracking_uri, run).artifact_location}/{raw_model.CODE_FOLDER}/tasks"
    with tempfile.TemporaryDirectory() as folder:
        return raw_model.changed_feature_code(mlflow.artifacts.download_artifacts(artifact_uri=shipped, dst_path=folder))


def same_folds(champion_run, challenger_run):
    """Scored on the same training data (dataset digest) and the same folds."""
    def digest(run):
        return sorted(d.dataset.digest for d in run.inputs.dataset_inputs)

    same_split = all(champion_run.data.params.get(p) == challenger_run.data.params.get(p) for p in SPLIT_PARAMS)
    return same_split and digest(champion_run) == digest(challenger_run)


def record_evaluation(tracking_uri, experiment_id, champion_run, spec, scores, settings):
    """Log a champion's re-evaluation as a run of this build (a child of its parent run); returns the run."""
    from tracking.builds import build_identity, find_build_run

    parent = find_build_run(tracking_uri)
    tags = {ROLE_TAG: "evaluation", "model.class": spec["class"], "model.params": json.dumps(spec["params"], sort_keys=True),
            "evaluated.run_id": champion_run.info.run_id, **source_tags()}
    if parent is not None:
        tags.update({PARENT_TAG: parent.info.run_id, BUILD_TAG: build_identity()})
    store = client(tracking_uri)
    run = store.create_run(experiment_id, run_name=f"{champion_run.info.run_name}-re-evaluated", tags=tags)
    for key, value in settings.items():
        store.log_param(run.info.run_id, key, value)
    for key, value in scores.items():
        store.log_metric(run.info.run_id, key, value)
    store.set_terminated(run.info.run_id, "FINISHED")
    return store.get_run(run.info.run_id)


def _promote(tracking_uri, registered_model_name, outcome, rule, metric, challenger, champion, replaced, version_tags):
    """Register the challenger with its promotion record and point the alias at it."""
    from tracking.builds import find_build_run

    decision = Decision(outcome, rule, metric, challenger, champion, "", replaced)
    build = find_build_run(tracking_uri)
    record = {
        "promotion.build": build.info.run_id if build else "",
        registry.REPLACED_TAG: replaced or "",
        "promotion.rule": rule,
        "promotion.challenger": challenger.text(),
        "promotion.champion": champion.text() if champion else "",
        "promotion.commit": source_tags().get("mlflow.source.git.commit", ""),
        **(version_tags or {}),
    }
    # a run promoted again (after a rollback, say) keeps its version, which takes this record
    version = registry.version_of_run(tracking_uri, registered_model_name, challenger.run_id)
    if version:
        registry.rewrite_record(tracking_uri, registered_model_name, version, description(decision, record), record)
    else:
        version = registry.register(
            tracking_uri, registered_model_name, challenger.run_id, description(decision, record), record
        )
    registry.move_alias(tracking_uri, registered_model_name, version, replaced, f"{outcome}: {rule}",
                        score=f"cv_{metric}_mean {challenger.text()}")
    decision.version = version
    return decision


def description(decision, record):
    """The version's promotion record as one paragraph for the registry page."""
    was = f"replaced version {decision.replaced}" if decision.replaced else "was the first champion"
    against = f"; the champion scored {decision.champion.text()}" if decision.champion else ""
    build = f"build run {record['promotion.build']}" if record["promotion.build"] else "a build"
    commit = f" at commit {record['promotion.commit']}" if record["promotion.commit"] else ""
    return (f"Promoted to @champion by {build}{commit}: run {decision.challenger.run_name} ({decision.challenger.run_id}) "
            f"{was}. cv_{decision.metric}_mean {decision.challenger.text()}{against}. Rule: {decision.rule}.")
