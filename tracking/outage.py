"""A tracking store that cannot be reached or written: telling it apart from a
fit's own errors, checking an SQLite store's disk before a build, and the one
line that says so. It reads exceptions and files; it does not talk to a store."""
import errno
import logging
import os
import re
import shutil
import time
from contextlib import contextmanager

from tracking.uri import redacted, resolve_tracking_uri, sqlite_path

# below this, an SQLite store's disk is called full before any fit starts
MIN_FREE_MIB = 100
# what the on_failure hook allows a store to answer in, when the fit may have failed because of it
PROBE_TIMEOUT_SECONDS = "5"
DISK_ERRNOS = {errno.ENOSPC, errno.EROFS, errno.EDQUOT}
# logs each database error with its traceback
MLFLOW_DATABASE_LOGGER = "mlflow.store.db.utils"


class StoreUnavailable(Exception):
    """The store cannot be reached or written; the message is one line naming it."""


def causes(error):
    """`error` and the exceptions it was raised from, innermost last."""
    chain, seen = [], set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        chain.append(error)
        error = error.__cause__ or error.__context__
    return chain


def _drop_store_failure_tracebacks(record):
    """MLflow logs the traceback of each database error; when the store cannot
    be written the build ends with one line that says so instead, in the main
    process as in the workers."""
    return not (record.exc_info and store_failure(causes(record.exc_info[1])))


logging.getLogger(MLFLOW_DATABASE_LOGGER).addFilter(_drop_store_failure_tracebacks)


def store_failure(errors):
    """What went wrong with the store, in a few words, if one of `errors` (an
    exception and its causes) says the tracking store cannot be reached or
    written after MLflow's retries; None for a fit's own errors."""
    import requests

    for error in errors:
        text = str(error)
        if isinstance(error, requests.exceptions.RetryError):
            codes = re.search(r"too many (\d{3}) error responses", text)
            return f"HTTP {codes.group(1)}" if codes else "too many failed requests"
        if isinstance(error, requests.exceptions.Timeout):
            return "no answer in time"
        if isinstance(error, requests.exceptions.ConnectionError):
            return "connection refused" if "refused" in text.lower() else "connection failed"
        if isinstance(error, requests.exceptions.ChunkedEncodingError):  # cut mid-answer: MLflow does not retry it
            return "connection cut"
        if type(error).__name__ == "OperationalError":  # sqlite3, SQLAlchemy and database drivers
            return text.strip().splitlines()[0].removeprefix("(sqlite3.OperationalError) ")
        if isinstance(error, OSError) and error.errno in DISK_ERRNOS:
            return error.strerror
    return None


def check_store_writable(tracking_uri):
    """One line saying why an SQLite store cannot be written, or None."""
    if not tracking_uri.startswith("sqlite:"):
        return None
    store = sqlite_path(tracking_uri).resolve()
    folder = store.parent
    problem = None
    if store.exists() and not os.access(store, os.W_OK):
        problem = f"{store} is read-only"
    elif not os.access(folder, os.W_OK):
        problem = f"cannot write in its folder {folder}"
    elif (artifacts := folder / "mlartifacts").exists() and not os.access(artifacts, os.W_OK):
        problem = f"cannot write in its artifact folder {artifacts}"
    elif (free := shutil.disk_usage(folder).free // 2**20) < MIN_FREE_MIB:
        problem = f"only {free} MiB free on the disk of {folder}"
    return f"mlflow_tracking_uri {redacted(tracking_uri)!r}: {problem}; no fit was started" if problem else None


def unreachable_line(tracking_uri, reason):
    """The one line of a build that found its store unreachable before any fit."""
    return (
        f"The tracking {_kind(tracking_uri)} {redacted(tracking_uri)} cannot be reached ({reason}); "
        "no fit was started. Once it answers, run the same command."
    )


def refused_credentials(error, tracking_uri):
    """What a tracking server that answered 401 to `error`'s request refused,
    as the start of a line naming it; None for any other error."""
    from mlflow.utils.credentials import read_mlflow_creds

    if getattr(error, "error_code", None) != "UNAUTHENTICATED":
        return None
    username = read_mlflow_creds().username
    whose = f"of {username!r}" if username else "(none given: MLFLOW_TRACKING_USERNAME is not set)"
    return f"The tracking server {redacted(tracking_uri)} refused the credentials {whose} (HTTP 401)"


SIGN_IN = (
    "Set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD, for deploy/server's builds: "
    "set -a; source .deploy/server/builder.env; set +a"
)


def outage_line(tracking_uri, reason, since, counts):
    """The one line of a build stopped because its store went away (`tracking_uri` may be the setting's raw expression)."""
    tracking_uri, _ = resolve_tracking_uri(tracking_uri)
    when = time.strftime("%H:%M:%S", time.localtime(since))
    if tracking_uri.startswith(("http:", "https:")):
        what = f"The tracking server {redacted(tracking_uri)} has been unreachable since {when} ({reason})"
        then = "Once it answers again, run the same command to resume."
    else:
        what = f"The tracking store {redacted(tracking_uri)} could not be written from {when} on ({reason})"
        then = "Once it can, run the same command to resume."
    return f"{what}: {counts}. {then}"


@contextmanager
def without_retries():
    keys = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": PROBE_TIMEOUT_SECONDS}
    saved = {key: os.environ.get(key) for key in keys}
    os.environ.update(keys)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _kind(tracking_uri):
    return "server" if tracking_uri.startswith(("http:", "https:")) else "store"
