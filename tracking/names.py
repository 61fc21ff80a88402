"""Names that the runs, the registry and the tests agree on."""

MODEL_ARTIFACT = "model"
REPORT_ARTIFACT = "report.html"
CONFUSION_MATRIX_ARTIFACT = "confusion_matrix.png"
LEADERBOARD_TABLE = "leaderboard.json"
LEADERBOARD_CHART = "leaderboard.png"
CHAMPION_ALIAS = "champion"
ROLE_TAG = "grid.role"  # "fit", "compare", "build": what made the run, so none is mistaken for another
PROCESS_TAG = "grid.process"  # host:pid:start time of the process that made the run
