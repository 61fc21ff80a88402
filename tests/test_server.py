"""The grid built against deploy/server (MLflow server, PostgreSQL, proxied artifacts)."""
import mlflow.artifacts
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

import tracking
from tasks import data, models

pytestmark = pytest.mark.server


def test_every_fit_run_lands_whole_on_the_server(grid_on_server, tmp_path):
    url = grid_on_server.url
    client = MlflowClient(url)
    experiment = client.get_experiment_by_name("iris-grid")
    runs = client.search_runs([experiment.experiment_id], filter_string=f"tags.`{tracking.ROLE_TAG}` = 'fit'")
    # proxied: clients send artifacts to the server, which stores them
    assert experiment.artifact_location.startswith("mlflow-artifacts:")

    assert len(runs) == 8
    assert sorted(r.info.status for r in runs) == ["FINISHED"] * 8
    logged_models = {m.source_run_id: m for m in client.search_logged_models([experiment.experiment_id])}
    table = pd.read_parquet(grid_on_server.project.path / "products" / "features.parquet")
    for run in runs:
        run_id = run.info.run_id
        assert set(run.data.metrics) == {*models.METRICS, *models.CV_METRICS}

        folder = tmp_path / run_id
        for name in (tracking.REPORT_ARTIFACT, tracking.CONFUSION_MATRIX_ARTIFACT):
            mlflow.artifacts.download_artifacts(
                run_id=run_id, artifact_path=name, dst_path=str(folder), tracking_uri=url
            )
        assert run_id in (folder / tracking.REPORT_ARTIFACT).read_text()  # this run's own report
        assert (folder / tracking.CONFUSION_MATRIX_ARTIFACT).read_text().startswith("<svg")

        model = tracking.load_model(f"models:/{logged_models[run_id].model_id}", url)
        assert type(model.estimator).__name__ == run.data.tags["model.family"]
        assert len(model.predict(table.drop(columns=data.TARGET))) == len(table)

    # and they are in the server's artifact store, not anywhere near the client
    stored = grid_on_server.state / "artifacts"
    assert len(list(stored.rglob(tracking.REPORT_ARTIFACT))) == 8
    assert not (grid_on_server.project.path / "mlartifacts").exists()
