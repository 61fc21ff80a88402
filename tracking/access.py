"""What the account a build signs in with may do on a tracking server with
accounts (MLflow's basic-auth app): asked before any fit, so that a build that
could not write stops having written nothing."""
from tracking.names import compare_experiment
from tracking.outage import StoreUnavailable
from tracking.store import client
from tracking.uri import redacted

# the permissions that let an account create runs in an experiment, and register versions
WRITERS = {"EDIT", "MANAGE"}


class AccessRefused(StoreUnavailable):
    """The account may not write where the build writes; the message is one line."""


def check_can_write(tracking_uri, experiment_name, registered_model_name):
    """Raise AccessRefused unless the signed-in account may create runs in the
    build's experiments and register versions of its model (those that exist:
    one the account creates, it owns). A server without accounts, an admin, and
    other stores pass."""
    if not tracking_uri.startswith(("http:", "https:")) or (user := signed_in_user(tracking_uri)) is None:
        return
    store = client(tracking_uri)
    experiments = [store.get_experiment_by_name(n) for n in (experiment_name, compare_experiment(experiment_name))]
    resources = [("experiment", e.experiment_id, f"create runs in {e.name!r}") for e in experiments if e]
    if store.search_registered_models(filter_string=f"name = '{registered_model_name}'"):
        resources.append(("registered_model", registered_model_name, f"register versions of {registered_model_name!r}"))
    for kind, resource_id, what in resources:
        permission = _ask(tracking_uri, "3.0/mlflow/users/permissions/get",
                          username=user, resource_type=kind, resource_id=resource_id)["permission"]
        if permission not in WRITERS:
            raise AccessRefused(
                f"The account {user!r} may not {what} on the tracking server {redacted(tracking_uri)} "
                f"(its permission: {permission}); no fit was started. Builds sign in as an account with "
                "EDIT there, such as deploy/server's builder"
            )


def signed_in_user(tracking_uri):
    """The name of the account the requests sign in with; None on a server without accounts, or for an admin."""
    response = _get(tracking_uri, "2.0/mlflow/users/current")
    try:
        user = response.json().get("user") if response.status_code == 200 else None
    except ValueError:  # a server without accounts may answer with its UI's page
        user = None
    return None if not user or user.get("is_admin") else user["username"]


def _ask(tracking_uri, endpoint, **params):
    from mlflow.utils.rest_utils import verify_rest_response

    return verify_rest_response(_get(tracking_uri, endpoint, **params), endpoint).json()


def _get(tracking_uri, endpoint, **params):
    """GET /api/<endpoint>, signed in as MLflow's client would be (environment or ~/.mlflow/credentials)."""
    from mlflow.utils.credentials import get_default_host_creds
    from mlflow.utils.rest_utils import http_request

    return http_request(get_default_host_creds(tracking_uri), f"/api/{endpoint}", "GET", params=params)
