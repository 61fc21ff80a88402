"""Names that the runs, the registry and the tests agree on."""

MODEL_ARTIFACT = "model"
REPORT_ARTIFACT = "report.html"
CONFUSION_MATRIX_ARTIFACT = "confusion_matrix.png"
LEADERBOARD_TABLE = "leaderboard.json"
LEADERBOARD_CHART = "leaderboard.png"
CHAMPION_ALIAS = "champion"
ROLE_TAG = "grid.role"  # "fit" on every fit run, "compare" on compare's, so neither is mistaken for the other
PROCESS_TAG = "grid.process"  # host:pid:start time of the process that runs the fit
