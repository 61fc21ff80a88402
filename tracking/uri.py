"""Which store a tracking URI names: reading the setting, the store's file, the URI fit to print."""
import os
import re
from pathlib import Path
from urllib.parse import urlparse

# env.yaml's default, "${MLFLOW_TRACKING_URI:-sqlite:///...}": the variable if
# it is set, else what follows ":-"; "${MLFLOW_TRACKING_URI}" requires it.
FROM_ENVIRONMENT = re.compile(r"^\$\{(?P<variable>\w+)(?::-(?P<default>.*))?\}$", re.DOTALL)


def resolve_tracking_uri(value, given_by="--env--mlflow_tracking_uri"):
    """The store that `value`, the setting mlflow_tracking_uri, names, and where that came from.

    MLflow's order: a URI given on the command line (or written in an env
    file: `given_by` says which), else MLFLOW_TRACKING_URI, else env.yaml's
    default. Returns (uri, where); raises ValueError, in one line, when the
    setting asks for MLFLOW_TRACKING_URI and it is not set.
    """
    value = str(value)
    if not (asked := FROM_ENVIRONMENT.match(value)):
        return value, given_by
    variable, default = asked["variable"], asked["default"]
    if os.environ.get(variable):
        return os.environ[variable], variable
    if default is None:
        raise ValueError(f"mlflow_tracking_uri {value!r}: {variable} is not set")
    return default, f"env.yaml's default, as {variable} is not set"


def sqlite_path(tracking_uri):
    # sqlite:///rel.db -> rel.db, sqlite:////abs.db -> /abs.db
    return Path(urlparse(tracking_uri).path[1:])


def redacted(uri):
    parsed = urlparse(uri)
    if parsed.password is None:
        return uri
    return uri.replace(f":{parsed.password}@", ":***@")


def where_runs_go(tracking_uri, where):
    """The line a tracked build starts with."""
    return f"MLflow runs go to {redacted(tracking_uri)} (from {where})"
