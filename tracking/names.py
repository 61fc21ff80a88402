"""Names that the runs, the registry and the tests agree on; nothing here imports anything."""

MODEL_ARTIFACT = "model"
REPORT_ARTIFACT = "report.html"
CONFUSION_MATRIX_ARTIFACT = "confusion_matrix.svg"
LEADERBOARD_TABLE = "leaderboard.json"
LEADERBOARD_CHART = "leaderboard.png"
SEARCH_RUNGS_TABLE = "search_rungs.json"  # a halving search's fits, rung by rung
CHAMPION_ALIAS = "champion"
ROLE_TAG = "grid.role"  # "fit", "compare", "build" (a build's parent run), "evaluation" (a champion re-evaluated)
PROCESS_TAG = "grid.process"  # host:pid:start time of the process that made the run
BUILD_TAG = "grid.build"  # host:pid:start time of the process that rendered the build (tracking.builds)


def compare_experiment(experiment_name):
    """The experiment of compare's runs: beside the fits', so that every run
    listed in the fits' experiment is a model of the grid."""
    return f"{experiment_name}-compare"
