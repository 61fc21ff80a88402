"""Who may do what on deploy/server (MLflow's basic-auth app), as a teammate would find out
through MLflow's client, the REST API and the project's commands. On the shared grid_on_server."""
import configparser
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from mlflow.exceptions import MlflowException
from mlflow.server.auth.client import AuthServiceClient
from mlflow.tracking import MlflowClient

import tracking
from deployed import CREDENTIALS, credentials, files_holding, passwords, signed_in
from sandbox import ROOT, free_ports, make_project, serving

pytestmark = pytest.mark.server

WRONG_PASSWORD = "not-the-password-of-builder"


def account_command(deployed, command, *args):
    """deploy/server/<command> against the shared server."""
    return subprocess.run(
        [ROOT / "deploy" / "server" / command, *args],
        env={**os.environ, "STATE": str(deployed.state)}, capture_output=True, text=True, timeout=120,
    )


def add_user(deployed, name, role):
    added = account_command(deployed, "add-user", name, role)
    assert added.returncode == 0, added.stderr
    path = Path(added.stdout.strip())
    assert path == deployed.state / f"{name}.env"
    assert credentials(path)["MLFLOW_TRACKING_PASSWORD"] not in added.stdout + added.stderr
    return path


@pytest.fixture(scope="module")
def reader(grid_on_server):
    return add_user(grid_on_server, "ann", "reader")


def fit_runs(url):
    client = MlflowClient(url)
    experiment = client.get_experiment_by_name("iris-grid")
    return client.search_runs([experiment.experiment_id], filter_string=f"tags.`{tracking.ROLE_TAG}` = 'fit'")


def all_runs(url):
    client = MlflowClient(url)
    ids = [client.get_experiment_by_name(n).experiment_id for n in ("iris-grid", "iris-grid-compare")]
    return client.search_runs(ids, max_results=1000)


def one_line_with(text, output):
    assert "Traceback" not in output, output
    lines = [line for line in output.splitlines() if text in line]
    assert len(lines) == 1, output
    return lines[0]


def test_anonymous_requests_get_401_and_every_credentials_file_is_private(grid_on_server, reader):
    get_experiment = f"{grid_on_server.url}/api/2.0/mlflow/experiments/get-by-name"
    asked = {"experiment_name": "iris-grid"}
    assert requests.get(get_experiment, params=asked, timeout=30).status_code == 401
    signed = credentials(reader)
    login = tuple(signed[key] for key in CREDENTIALS)
    assert requests.get(get_experiment, params=asked, auth=login, timeout=30).status_code == 200
    for name in ["admin", "builder", "ann"]:
        assert stat.S_IMODE((grid_on_server.state / f"{name}.env").stat().st_mode) == 0o600


def test_builds_without_credentials_or_with_a_wrong_password_stop_before_any_fit(grid_on_server, tmp_path):
    url = grid_on_server.url
    runs_before = len(all_runs(url))
    project = make_project(tmp_path)
    project.tracking_uri = url
    with signed_in(None):
        unsigned = project.build(check=False)
        wrong = project.build(check=False, env={"MLFLOW_TRACKING_USERNAME": "builder", "MLFLOW_TRACKING_PASSWORD": WRONG_PASSWORD})

    for result, whose in [(unsigned, "(none given"), (wrong, "of 'builder'")]:
        assert result.returncode != 0
        line = one_line_with(f"The tracking server {url} refused the credentials {whose}", result.stdout + result.stderr)
        assert "no fit was started" in line
    assert WRONG_PASSWORD not in wrong.stdout + wrong.stderr
    assert not (project.path / "products" / "fit").exists()
    assert len(all_runs(url)) == runs_before


def test_a_reader_reads_but_may_not_create_runs_nor_move_the_champion(grid_on_server, reader, tmp_path):
    url = grid_on_server.url
    runs_before = len(all_runs(url))
    champion_before = MlflowClient(url).get_model_version_by_alias("iris-classifier", tracking.CHAMPION_ALIAS)
    history_before = MlflowClient(url).get_registered_model("iris-classifier").tags
    project = make_project(tmp_path)
    project.tracking_uri = url

    with signed_in(reader):
        client = MlflowClient(url)
        [run, *_] = fit_runs(url)
        report = client.download_artifacts(run.info.run_id, tracking.REPORT_ARTIFACT, str(tmp_path))
        assert run.info.run_id in Path(report).read_text()
        champion = client.get_model_version_by_alias("iris-classifier", tracking.CHAMPION_ALIAS)
        assert champion.version == champion_before.version

        with pytest.raises(MlflowException) as refused_run:
            client.create_run(run.info.experiment_id)
        with pytest.raises(MlflowException) as refused_move:
            client.set_registered_model_alias("iris-classifier", tracking.CHAMPION_ALIAS, champion.version)
        build = project.build(check=False)
        moved = subprocess.run(
            [ROOT / "bin" / "champion", "--env--mlflow_tracking_uri", url, "set", champion.version],
            cwd=project.path, capture_output=True, text=True, timeout=120,
        )

    assert refused_run.value.get_http_status_code() == 403
    assert refused_move.value.get_http_status_code() == 403
    assert build.returncode != 0
    line = one_line_with("may not create runs in 'iris-grid'", build.stdout + build.stderr)
    assert line.endswith(f"The account 'ann' may not create runs in 'iris-grid' on the tracking server {url} "
                         "(its permission: READ); no fit was started. Builds sign in as an account with EDIT "
                         "there, such as deploy/server's builder")
    assert not (project.path / "products" / "fit").exists()
    assert moved.returncode == 1
    assert moved.stderr.strip() == (
        f"bin/champion set: the account 'ann' may not move iris-classifier@champion on {url} (HTTP 403); "
        "the alias is unchanged"
    )
    assert len(all_runs(url)) == runs_before
    after = MlflowClient(url).get_registered_model("iris-classifier")
    assert after.aliases[tracking.CHAMPION_ALIAS] == champion_before.version
    assert after.tags == history_before


def test_add_user_refuses_an_existing_name_and_an_unknown_role_in_one_line(grid_on_server, reader):
    existing = account_command(grid_on_server, "add-user", "ann", "builder")
    unknown = account_command(grid_on_server, "add-user", "carl", "admin")
    assert (existing.returncode, unknown.returncode) == (1, 1)
    assert existing.stderr == f"add-user: user 'ann' exists already on {grid_on_server.url}: remove-user it first, or pick another name\n"
    assert unknown.stderr == "add-user: unknown role 'admin': a teammate is a reader or a builder\n"
    assert not (grid_on_server.state / "carl.env").exists()
    assert credentials(reader)["MLFLOW_TRACKING_USERNAME"] == "ann"  # left as it was


def test_a_builder_added_later_may_write_and_a_new_password_or_a_removal_locks_the_old_one_out(grid_on_server):
    url = grid_on_server.url
    env_file = add_user(grid_on_server, "bo", "builder")
    first = credentials(env_file)
    experiment_id = MlflowClient(url).get_experiment_by_name("iris-grid").experiment_id
    with signed_in(env_file):
        granted = AuthServiceClient(url).get_user_permission("bo", "experiment", experiment_id)
        model = AuthServiceClient(url).get_user_permission("bo", "registered_model", "iris-classifier")
    assert (granted.permission, model.permission) == ("EDIT", "EDIT")

    renewed = account_command(grid_on_server, "new-password", "bo")
    assert renewed.returncode == 0 and renewed.stdout.strip() == str(env_file)
    second = credentials(env_file)
    assert second["MLFLOW_TRACKING_PASSWORD"] != first["MLFLOW_TRACKING_PASSWORD"]
    assert second["MLFLOW_TRACKING_PASSWORD"] not in renewed.stdout + renewed.stderr

    old, new = [tuple(c[key] for key in CREDENTIALS) for c in (first, second)]
    assert refused_once_the_workers_forget(grid_on_server, old)
    assert requests.get(f"{url}/api/2.0/mlflow/users/current", auth=new, timeout=30).status_code == 200

    removed = account_command(grid_on_server, "remove-user", "bo")
    assert removed.returncode == 0, removed.stderr
    assert refused_once_the_workers_forget(grid_on_server, new)
    assert not env_file.exists()


def refused_once_the_workers_forget(deployed, login):
    """Whether every request with `login` gets 401 once the server's workers forgot
    the passwords they checked (its auth_cache_ttl_seconds), asked as a teammate would retry."""
    config = configparser.ConfigParser()
    config.read(deployed.state / "basic_auth.ini")
    deadline = time.monotonic() + config.getint("mlflow", "auth_cache_ttl_seconds") + 10
    while time.monotonic() < deadline:
        asked = {requests.get(f"{deployed.url}/api/2.0/mlflow/users/current", auth=login, timeout=30).status_code
                 for _ in range(6)}  # each worker in turn, by chance
        if asked == {401}:
            return True
        time.sleep(1)
    return False


def test_no_password_in_any_output_product_log_or_run(grid_on_server, reader):
    secrets = passwords(grid_on_server.state)
    assert len(secrets) >= 3  # admin, builder, ann
    state = grid_on_server.state
    assert not [s for s in secrets if s in grid_on_server.output]
    assert "MLflow runs go to " + grid_on_server.url in grid_on_server.output
    assert not files_holding(grid_on_server.project.path, secrets)
    assert not files_holding(state / "artifacts", secrets)
    for log in [state / "mlflow.log", state / "postgres" / "postgres.log"]:
        assert not [s for s in secrets if s in log.read_text(errors="replace")], log

    client = MlflowClient(grid_on_server.url)
    recorded = [
        value for run in all_runs(grid_on_server.url) for value in [*run.data.params.values(), *run.data.tags.values()]
    ]
    registered = client.get_registered_model("iris-classifier")
    recorded += [*registered.tags.values(), registered.description or ""]
    for version in client.search_model_versions("name = 'iris-classifier'"):
        recorded += [*version.tags.values(), version.description or "", version.source]
    assert recorded and not [v for v in recorded for s in secrets if s in v]


def test_the_champion_serves_from_the_server_signed_in_as_builder(grid_on_server, tmp_path):
    [port] = free_ports(1)
    venv_bin = Path(sys.executable).parent
    serve = [venv_bin / "mlflow", "models", "serve", "-m", "models:/iris-classifier@champion",
             "--env-manager", "local", "--host", "127.0.0.1", "--port", str(port)]
    env = {  # the builder's credentials are in this process's environment (deployed.server)
        **os.environ, "MLFLOW_TRACKING_URI": grid_on_server.url, "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "false",
        "PATH": f"{venv_bin}{os.pathsep}{os.environ['PATH']}",  # it starts uvicorn from the PATH
    }
    log = tmp_path / "serve.log"
    with serving(serve, f"http://127.0.0.1:{port}/ping", log, env=env, cwd=grid_on_server.project.path):
        answer = requests.post(f"http://127.0.0.1:{port}/invocations", timeout=60, json={"dataframe_split": {
            "columns": ["sepal_length", "sepal_width", "petal_length", "petal_width"],
            "data": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]],
        }})
    assert answer.json() == {"predictions": [0, 2]}
    assert not [s for s in passwords(grid_on_server.state) if s in log.read_text()]


def test_mlflows_credentials_file_signs_a_command_in_where_the_environment_does_not(grid_on_server, reader, tmp_path):
    signed = credentials(reader)
    (tmp_path / ".mlflow").mkdir()
    (tmp_path / ".mlflow" / "credentials").write_text(
        "[mlflow]\n" + "".join(f"{key.lower()} = {signed[key]}\n" for key in CREDENTIALS)
    )
    with signed_in(None):
        history = subprocess.run(
            [ROOT / "bin" / "champion", "--env--mlflow_tracking_uri", grid_on_server.url, "history"],
            cwd=grid_on_server.project.path, env={**os.environ, "HOME": str(tmp_path)},
            capture_output=True, text=True, timeout=120,
        )
    assert history.returncode == 0, history.stderr
    assert "version 1" in history.stdout
