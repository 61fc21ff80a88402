"""The alias `champion` in the Model Registry: every move recorded, and undone by bin/champion.

Each move of the alias is an event in the registered model's tags
(`champion.history.<ms>`: JSON with when, version, run, score, the version it
replaced and why), so `bin/champion history` reads one list whatever moved it:
a build's promotion, a rollback or a manual `set`. A version promoted by a
build also carries its own promotion record (tags `promotion.*` and its
description, see tracking/promotion.py), that of its latest promotion.
"""
import json
import time
from dataclasses import dataclass

from tracking.names import CHAMPION_ALIAS, MODEL_ARTIFACT
from tracking.store import client
from tracking.uri import redacted

HISTORY_TAG = "champion.history."
REPLACED_TAG = "promotion.replaced"  # on a version: the version the alias pointed at before it was promoted


class RegistryError(ValueError):
    """A move of the alias that cannot be made: one line, the alias unchanged."""


@dataclass
class Champion:
    """The registered model version that the alias `champion` points at."""

    name: str
    version: str
    run_id: str
    previous_version: str | None  # where the alias pointed before, None if nowhere


def current_version(tracking_uri, registered_model_name):
    """The version the alias points at, as a string, or None (no model, or no alias)."""
    registered = _registered_model(tracking_uri, registered_model_name)
    version = registered.aliases.get(CHAMPION_ALIAS) if registered else None
    return None if version is None else str(version)


def version_of_run(tracking_uri, registered_model_name, run_id):
    """The first version that holds `run_id`'s model, or None."""
    found = client(tracking_uri).search_model_versions(f"name = '{registered_model_name}' and run_id = '{run_id}'")
    return str(min(int(v.version) for v in found)) if found else None


def create_registered_model(tracking_uri, registered_model_name):
    """The registered model, with its description, unless it exists (deploy/server creates it first)."""
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import RESOURCE_ALREADY_EXISTS, ErrorCode

    try:
        client(tracking_uri).create_registered_model(
            registered_model_name,
            description=f"The best model of a grid; the alias '{CHAMPION_ALIAS}' marks the current one. "
            "bin/champion history lists its moves.",
        )
    except MlflowException as error:
        if error.error_code != ErrorCode.Name(RESOURCE_ALREADY_EXISTS):
            raise


def register(tracking_uri, registered_model_name, run_id, description, tags):
    """A new version of `registered_model_name` holding `run_id`'s model, with its promotion record."""
    registry = client(tracking_uri)
    experiment_id = registry.get_run(run_id).info.experiment_id
    [model] = registry.search_logged_models(
        experiment_ids=[experiment_id], filter_string=f"source_run_id = '{run_id}' AND name = '{MODEL_ARTIFACT}'"
    )
    create_registered_model(tracking_uri, registered_model_name)
    version = registry.create_model_version(
        registered_model_name, source=model.model_uri, run_id=run_id, model_id=model.model_id,
        tags={key: str(value) for key, value in tags.items()}, description=description,
    )
    return str(version.version)


def rewrite_record(tracking_uri, registered_model_name, version, description, tags):
    """Replace the promotion record of an existing version (promoted again, after a rollback say):
    its description, and its `promotion.*` tags, those the new record lacks removed."""
    registry = client(tracking_uri)
    for key in registry.get_model_version(registered_model_name, version).tags:
        if key.startswith("promotion.") and key not in tags:
            registry.delete_model_version_tag(registered_model_name, version, key)
    for key, value in tags.items():
        registry.set_model_version_tag(registered_model_name, version, key, str(value))
    registry.update_model_version(registered_model_name, version, description=description)


def move_alias(tracking_uri, registered_model_name, version, replaced, why, score=""):
    """Point the alias at `version` and add the move to the history."""
    from mlflow.exceptions import MlflowException
    from mlflow.utils.credentials import read_mlflow_creds

    registry = client(tracking_uri)
    run_id = registry.get_model_version(registered_model_name, version).run_id
    try:
        registry.set_registered_model_alias(registered_model_name, CHAMPION_ALIAS, version)
    except MlflowException as error:
        if error.error_code != "PERMISSION_DENIED":
            raise
        raise RegistryError(
            f"the account {read_mlflow_creds().username!r} may not move {registered_model_name}@{CHAMPION_ALIAS} "
            f"on {redacted(tracking_uri)} (HTTP 403); the alias is unchanged"
        ) from None
    now_ms = int(time.time() * 1000)
    event = {"when": now_ms, "version": str(version), "run": run_id, "score": score, "replaced": replaced, "why": why}
    registry.set_registered_model_tag(registered_model_name, f"{HISTORY_TAG}{now_ms:015d}.{version}", json.dumps(event))
    return Champion(registered_model_name, str(version), run_id, replaced)


def history(tracking_uri, registered_model_name):
    """The moves of the alias, oldest first, as dicts (see move_alias)."""
    registered = _registered_model(tracking_uri, registered_model_name)
    if registered is None:
        raise RegistryError(f"no registered model {registered_model_name!r} in {redacted(tracking_uri)}")
    tags = registered.tags or {}
    return [json.loads(tags[key]) for key in sorted(tags) if key.startswith(HISTORY_TAG)]


def history_lines(tracking_uri, registered_model_name):
    lines = []
    for event in history(tracking_uri, registered_model_name):
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(event["when"] / 1000))
        replaced = f"replaced version {event['replaced']}" if event["replaced"] else "replaced no version"
        score = f", {event['score']}" if event["score"] else ""
        lines.append(f"{when} UTC  version {event['version']}  run {event['run']}{score}, {replaced}: {event['why']}")
    return lines


def rollback(tracking_uri, registered_model_name):
    """Point the alias back at the version the current champion replaced when it was promoted."""
    current = _require_current(tracking_uri, registered_model_name)
    replaced = client(tracking_uri).get_model_version(registered_model_name, current).tags.get(REPLACED_TAG)
    if not replaced:
        raise RegistryError(
            f"{registered_model_name}@{CHAMPION_ALIAS} is version {current}, which replaced no earlier version: "
            "nothing to roll back to"
        )
    return move_alias(tracking_uri, registered_model_name, replaced, current, f"rollback from version {current}")


def set_version(tracking_uri, registered_model_name, version):
    """Point the alias at `version`, any registered version (a manual override)."""
    from mlflow.exceptions import MlflowException

    current = _require_current(tracking_uri, registered_model_name, allow_none=True)
    try:
        client(tracking_uri).get_model_version(registered_model_name, str(version))
    except MlflowException:
        known = sorted(int(v.version) for v in client(tracking_uri).search_model_versions(f"name = '{registered_model_name}'"))
        raise RegistryError(
            f"{registered_model_name} has no version {version!r} (registered: {', '.join(map(str, known)) or 'none'})"
        ) from None
    return move_alias(tracking_uri, registered_model_name, str(version), current, "set by hand (bin/champion set)")


def _require_current(tracking_uri, registered_model_name, allow_none=False):
    if _registered_model(tracking_uri, registered_model_name) is None:
        raise RegistryError(f"no registered model {registered_model_name!r} in {redacted(tracking_uri)}")
    current = current_version(tracking_uri, registered_model_name)
    if current is None and not allow_none:
        raise RegistryError(f"{registered_model_name} has no {CHAMPION_ALIAS} alias yet")
    return current


def _registered_model(tracking_uri, registered_model_name):
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST, ErrorCode

    try:
        return client(tracking_uri).get_registered_model(registered_model_name)
    except MlflowException as error:
        if error.error_code != ErrorCode.Name(RESOURCE_DOES_NOT_EXIST):
            raise
        return None
