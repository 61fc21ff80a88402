"""bin/champion: the history of the alias `champion`, rollback, and set VERSION.

Run from the project folder; reads the tracking URI and the registered model
name from env.yaml (as Ploomber renders it), overridden by --env--KEY VALUE
like a build. A move that cannot be made prints one line and exits 1, the
alias unchanged.
"""
import argparse
import os
import sys

os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")  # before MLflow is imported: no INFO lines

from tracking import registry  # noqa: E402
from tracking.outage import SIGN_IN, refused_credentials  # noqa: E402
from tracking.store import check_tracking_uri  # noqa: E402
from tracking.uri import resolve_tracking_uri  # noqa: E402

USAGE = "bin/champion [--env--mlflow_tracking_uri URI] [--env--registered_model_name NAME] history | rollback | set VERSION"


def settings(overrides):
    """The tracking URI, where it came from, and the registered model name: env.yaml's,
    with --env-- overrides; the URI in MLflow's order, as a build takes it."""
    from pathlib import Path

    from ploomber.env.envdict import EnvDict

    env = dict(EnvDict("env.yaml", path_to_here=Path.cwd()))
    env.update(overrides)
    given_by = "--env--mlflow_tracking_uri" if "mlflow_tracking_uri" in overrides else "env.yaml"
    tracking_uri, where = resolve_tracking_uri(env["mlflow_tracking_uri"], given_by)
    return tracking_uri, where, str(env["registered_model_name"])


def parse(argv):
    overrides, rest = {}, []
    args = iter(argv)
    for arg in args:
        if arg.startswith("--env--"):
            key, _, value = arg[len("--env--"):].partition("=")
            overrides[key] = value if value else next(args, "")
        else:
            rest.append(arg)
    parser = argparse.ArgumentParser(prog="bin/champion", usage=USAGE)
    parser.add_argument("command", choices=["history", "rollback", "set"])
    parser.add_argument("version", nargs="?")
    parsed = parser.parse_args(rest)
    if (parsed.command == "set") != (parsed.version is not None):
        parser.error("set takes one VERSION; history and rollback take none")
    return parsed, overrides


def main(argv):
    from mlflow.exceptions import MlflowException

    parsed, overrides = parse(argv)
    try:
        tracking_uri, where, name = settings(overrides)
        problem = check_tracking_uri(tracking_uri, where)
    except ValueError as error:  # MLFLOW_TRACKING_URI asked for and not set
        problem = str(error)
    if problem:
        print(f"bin/champion: {problem}", file=sys.stderr)
        return 1
    try:
        if parsed.command == "history":
            lines = registry.history_lines(tracking_uri, name)
            print("\n".join(lines) if lines else f"{name}: no move of @champion recorded")
            return 0
        if parsed.command == "rollback":
            moved = registry.rollback(tracking_uri, name)
        else:
            moved = registry.set_version(tracking_uri, name, parsed.version)
    except registry.RegistryError as error:
        print(f"bin/champion {parsed.command}: {error}", file=sys.stderr)
        return 1
    except MlflowException as error:
        if not (refused := refused_credentials(error, tracking_uri)):
            raise
        print(f"bin/champion {parsed.command}: {refused}. {SIGN_IN}", file=sys.stderr)
        return 1
    was = f"version {moved.previous_version}" if moved.previous_version else "no version"
    print(f"{name}@champion is now version {moved.version} (run {moved.run_id}); it was {was}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
