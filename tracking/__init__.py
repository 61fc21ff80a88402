"""All MLflow wiring of the project, shared by the notebooks, hooks.py and bin/.

One import for callers (`import tracking`). The modules stand in layers, bottom
to top, one a line; a module imports only the layers below its own, not even
inside a function (tests/test_layers.py holds the order and checks it):

    names, uri, model_files, reports   names; which store a URI names; skops files; HTML reports
    outage                             a store that cannot be reached or written, and its one line
    store                              connecting, checking and creating the store; every run's tags
    raw_model, builds, registry,       the logged model; a build's parent run; the alias `champion`;
      access                           what the account a build signs in with may write
    model_code, fit_runs, promotion    loading a model; one fit's run; the champion's rule
    champion, champion_command         leaderboard, compare's run, summary; bin/champion
    __init__                           what callers import

MLflow is imported inside the functions that use it: with tracking off nothing
here loads MLflow or touches a store, and rendering the DAG stays fast.
"""
import os

# Before any MLflow or Ploomber code runs in this process.
TELEMETRY_OFF = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
    "PLOOMBER_STATS_ENABLED": "false",
    "PLOOMBER_VERSION_CHECK_DISABLED": "true",
}
os.environ.update(TELEMETRY_OFF)
# A quiet console: MLflow's INFO lines ("Create SQLAlchemy engine ...", the
# store's migrations) are left out, its warnings and errors shown. Set before
# MLflow configures its loggers, so it holds in this process and in the workers
# forked from it; MLFLOW_LOGGING_LEVEL=INFO brings them back. Nor does every
# run end with "View run ... at: <server URL>", which would show a password in it.
os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")

from tracking.access import AccessRefused, check_can_write  # noqa: E402
from tracking.builds import BUILD_ENV, end_build, find_build_run, join_build  # noqa: E402
from tracking.champion import (  # noqa: E402
    build_summary,
    check_model_name,
    leaderboard,
    load_champion,
    ranks_other_runs,
    read_run_ids,
    record_comparison,
)
from tracking.promotion import Decision  # noqa: E402
from tracking.registry import Champion, RegistryError  # noqa: E402
from tracking.fit_runs import (  # noqa: E402
    TrackedRun,
    UntrackedRun,
    finish_fit_run,
    fit_records,
    read_record,
    record_scores,
    recorded_run_id,
    start_fit_run,
)
from tracking.model_files import SKOPS_TRUSTED_TYPES, UntrustedModelError  # noqa: E402
from tracking.names import (  # noqa: E402
    BUILD_TAG,
    CHAMPION_ALIAS,
    CONFUSION_MATRIX_ARTIFACT,
    LEADERBOARD_CHART,
    LEADERBOARD_TABLE,
    MODEL_ARTIFACT,
    PROCESS_TAG,
    REPORT_ARTIFACT,
    ROLE_TAG,
    compare_experiment,
)
from tracking.outage import StoreUnavailable, causes, outage_line, store_failure  # noqa: E402
from tracking.raw_model import load_model  # noqa: E402
from tracking.reports import REPORT_SIZE_LIMIT, notebook_to_html  # noqa: E402
from tracking.store import (  # noqa: E402
    artifact_location,
    check_tracking_uri,
    close_dead_runs,
    prepare_store,
    run_tags,
    store_answers,
)
from tracking.uri import resolve_tracking_uri, where_runs_go  # noqa: E402
