"""All MLflow wiring of the project, shared by the notebooks, hooks.py and bin/.

One import for callers (`import tracking`); the code lives by concern:

    names.py        artifact names, tags and the alias every module agrees on
    store.py        the tracking URI, creating the store, closing dead runs
    fit_runs.py     one fit's MLflow run, from start to its report
    champion.py     the leaderboard, the registry and the alias `champion`
    model_files.py  saving and loading models with skops, never pickle
    reports.py      executed notebooks as HTML reports

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

from tracking.champion import (  # noqa: E402
    Champion,
    check_model_name,
    compare_experiment,
    crown,
    leaderboard,
    load_champion,
    read_run_ids,
    record_comparison,
)
from tracking.fit_runs import TrackedRun, UntrackedRun, finish_fit_run, start_fit_run  # noqa: E402
from tracking.model_files import SKOPS_TRUSTED_TYPES, UntrustedModelError, load_model, trusted_types_for  # noqa: E402
from tracking.names import (  # noqa: E402
    CHAMPION_ALIAS,
    CONFUSION_MATRIX_ARTIFACT,
    LEADERBOARD_CHART,
    LEADERBOARD_TABLE,
    MODEL_ARTIFACT,
    PROCESS_TAG,
    REPORT_ARTIFACT,
    ROLE_TAG,
)
from tracking.reports import REPORT_SIZE_LIMIT, notebook_to_html  # noqa: E402
from tracking.store import (  # noqa: E402
    artifact_location,
    check_tracking_uri,
    close_dead_runs,
    prepare_store,
    warm_up,
)
