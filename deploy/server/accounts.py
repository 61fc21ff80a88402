"""The accounts of deploy/server's basic-auth app: kept in its PostgreSQL, managed through its REST API.

Run by deploy/server/start and the commands beside it, with the project's .venv:

    accounts.py configure          before the server starts: admin.env, the auth config, the Flask key
    accounts.py init               once the server answers, on its first start: the project's
                                   experiments and registered model (owned by admin), and builder
    accounts.py add-user NAME ROLE      a teammate, reader or builder; writes $STATE/NAME.env, prints its path
    accounts.py remove-user NAME
    accounts.py new-password NAME       a new generated password, in $STATE/NAME.env

Every account's credentials live in $STATE/NAME.env (mode 0600), as lines that
`set -a; source` turns into MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD.
No password is printed or logged. Bad input is one line on stderr and exit 1.
"""
import os
import re
import secrets
import sys
import warnings
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]
STATE = Path(os.environ.get("STATE") or PROJECT / ".deploy" / "server").resolve()
ADMIN = "admin"
BUILDER = "builder"
ROLES = ("reader", "builder")
# Where a build writes: the project's experiments and registered model
# (env.yaml's names). A reader gets nothing beyond the server's default, READ.
WRITE_PERMISSION = "EDIT"
AUTH_CACHE_SECONDS = 10
NAME = re.compile(r"[a-z][a-z0-9_.-]{0,63}")


class AccountError(Exception):
    """Bad input or a state the command cannot act on: one line."""


def env_file(name):
    return STATE / f"{name}.env"


def write_private(path, text):
    """`text` in `path`, mode 0600 from its creation (never readable by others, not
    even for a moment), replacing the old file whole or not at all."""
    new = path.with_name(f"{path.name}.new")
    with os.fdopen(os.open(new, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as file:
        file.write(text)
    os.replace(new, path)
    return path


def write_credentials(name, password):
    return write_private(env_file(name), f"MLFLOW_TRACKING_USERNAME={name}\nMLFLOW_TRACKING_PASSWORD={password}\n")


def read_credentials(name):
    lines = dict(line.split("=", 1) for line in env_file(name).read_text().splitlines() if "=" in line)
    return lines["MLFLOW_TRACKING_USERNAME"], lines["MLFLOW_TRACKING_PASSWORD"]


def new_password():
    # 43 URL-safe characters: far beyond MLflow's 12, and nothing a shell would expand
    return secrets.token_urlsafe(32)


def configure(pg_port):
    """Before the server starts: admin's credentials (generated once), the key
    the workers sign their forms with, and the auth app's config file, which
    keeps the users in the deployment's PostgreSQL (PGPASSFILE has the password)."""
    if not env_file(ADMIN).exists():
        write_credentials(ADMIN, new_password())
    if not (key := STATE / "flask_secret_key").exists():
        write_private(key, secrets.token_hex(32))
    write_private(
        STATE / "basic_auth.ini",
        "[mlflow]\n"
        "default_permission = READ\n"
        f"database_uri = postgresql+psycopg2://mlflow@127.0.0.1:{pg_port}/mlflow_auth\n"
        f"admin_username = {ADMIN}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
        # Checking a password costs each request about 0.25 s of CPU (PBKDF2); a
        # worker remembers a good one this long. The price: a password changed or
        # a user removed still works on the other worker for up to that long.
        f"auth_cache_ttl_seconds = {AUTH_CACHE_SECONDS}\n"
    )


def project_names():
    """The fits' experiment, compare's, and the registered model, as env.yaml names them."""
    import yaml

    import tracking

    env = yaml.safe_load((PROJECT / "env.yaml").read_text())
    experiment = str(env["experiment_name"])
    return [experiment, tracking.compare_experiment(experiment)], str(env["registered_model_name"])


class Server:
    """The running server, asked as admin."""

    def __init__(self):
        uri_file = STATE / "tracking_uri"
        if not uri_file.exists():
            raise AccountError(f"no server running from {STATE}: run deploy/server/start first")
        self.uri = uri_file.read_text().strip()
        if not env_file(ADMIN).exists():
            raise AccountError(f"{self.uri} has never run with accounts (AUTH=off): restart it without AUTH=off")
        os.environ["MLFLOW_TRACKING_USERNAME"], os.environ["MLFLOW_TRACKING_PASSWORD"] = read_credentials(ADMIN)
        # the client imports the server's app, which imports a module Starlette deprecates
        warnings.filterwarnings("ignore", message="starlette.middleware.wsgi is deprecated")
        from mlflow.server.auth.client import AuthServiceClient

        self.auth = AuthServiceClient(self.uri)

    def exists(self, name):
        from mlflow.exceptions import MlflowException

        try:
            self.auth.get_user(name)
            return True
        except MlflowException as error:
            if error.error_code == "RESOURCE_DOES_NOT_EXIST":
                return False
            if error.get_http_status_code() == 404:  # no such endpoint: an open server
                raise AccountError(f"{self.uri} runs without accounts (AUTH=off): restart it without AUTH=off") from None
            raise

    def create_project_resources(self):
        """The experiments and the registered model, created by admin: no other
        account can claim their names first (on a server without workspaces
        any account may create an experiment and become its owner)."""
        import tracking
        from tracking.registry import create_registered_model

        experiments, model = project_names()
        ids = [tracking.prepare_store(self.uri, name) for name in experiments]
        create_registered_model(self.uri, model)
        return ids, model

    def grant_write(self, name):
        ids, model = self.create_project_resources()
        for experiment_id in ids:
            self.auth.grant_user_permission(name, "experiment", experiment_id, WRITE_PERMISSION)
        self.auth.grant_user_permission(name, "registered_model", model, WRITE_PERMISSION)

    def add(self, name, role):
        password = new_password()
        self.auth.create_user(name, password)
        if role == BUILDER:
            self.grant_write(name)
        return write_credentials(name, password)


def init():
    """On the first start: the project's experiments and model, and builder. Runs
    again harmlessly: an existing builder gets a new password, written anew."""
    server = Server()
    if server.exists(BUILDER):
        server.grant_write(BUILDER)
        return new_password_of(BUILDER, server)
    return server.add(BUILDER, BUILDER)


def add(name, role):
    if role not in ROLES:
        raise AccountError(f"unknown role {role!r}: a teammate is a {' or a '.join(ROLES)}")
    if not NAME.fullmatch(name):
        raise AccountError(f"{name!r} is not a user name: lower-case letters, digits, '.', '_', '-', a letter first")
    server = Server()
    if server.exists(name):
        raise AccountError(f"user {name!r} exists already on {server.uri}: remove-user it first, or pick another name")
    return server.add(name, role)


def remove(name):
    if name == ADMIN:
        raise AccountError("admin manages the accounts: it cannot be removed")
    server = Server()
    if not server.exists(name):
        raise AccountError(f"no user {name!r} on {server.uri}")
    server.auth.delete_user(name)
    env_file(name).unlink(missing_ok=True)


def new_password_of(name, server=None):
    server = server or Server()
    if not server.exists(name):
        raise AccountError(f"no user {name!r} on {server.uri}")
    password = new_password()
    server.auth.update_user_password(name, password)
    return write_credentials(name, password)


COMMANDS = {
    "configure": (configure, "PG_PORT"),
    "init": (init, ""),
    "add-user": (add, "NAME reader|builder"),
    "remove-user": (remove, "NAME"),
    "new-password": (new_password_of, "NAME"),
}


def main(argv):
    command, *args = argv or [""]
    function, usage = COMMANDS.get(command, (None, ""))
    if function is None or len(args) != len(usage.split()):
        print(f"usage: deploy/server/{command or 'add-user'} {usage or COMMANDS['add-user'][1]}", file=sys.stderr)
        return 2
    try:
        written = function(*args)
    except AccountError as error:
        print(f"{command}: {error}", file=sys.stderr)
        return 1
    if written:
        print(written)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
