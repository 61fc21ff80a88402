"""All MLflow wiring of the project, shared by the notebooks, hooks.py and bin/.

One import for callers (`import tracking`); the code lives by concern:

    names.py        artifact names, tags and the alias every module agrees on
    store.py        which store (the tracking URI), creating it, the tags of every run, closing dead runs
    fit_runs.py     one fit's MLflow run, from start to its report
    builds.py       a build's parent run, which holds its fits as children
    champion.py     the leaderboard, compare's run, the build's summary
    promotion.py    the champion moves only when beaten: the decision and its record
    registry.py     the alias `champion`: registering, moving, history, rollback
    model_files.py  saving and loading models with skops, never pickle
    reports.py      executed notebooks as HTML reports
    outage.py       a store that cannot be reached or written: detecting it, the one line

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

from tracking.builds import BUILD_ENV, end_build, find_build_run, join_build  # noqa: E402
from tracking.champion import (  # noqa: E402
    build_summary,
    check_model_name,
    compare_experiment,
    leaderboard,
    load_champion,
    ranks_other_runs,
    read_run_ids,
    record_comparison,
)
from tracking.promotion import Decision  # noqa: E402
from tracking.registry import Champion, RegistryError  # noqa: E402
from tracking.fit_runs import TrackedRun, UntrackedRun, finish_fit_run, recorded_run_id, start_fit_run  # noqa: E402
from tracking.model_files import SKOPS_TRUSTED_TYPES, UntrustedModelError, load_model  # noqa: E402
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
)
from tracking.outage import StoreUnavailable, causes, outage_line, store_answers, store_failure  # noqa: E402
from tracking.reports import REPORT_SIZE_LIMIT, notebook_to_html  # noqa: E402
from tracking.store import (  # noqa: E402
    artifact_location,
    check_tracking_uri,
    close_dead_runs,
    prepare_store,
    resolve_tracking_uri,
    run_tags,
    warm_up,
    where_runs_go,
)
