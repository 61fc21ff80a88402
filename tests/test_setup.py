"""bin/setup's choice of Python, run as written: which one it takes, what it refuses.

The refusals run bin/setup with a PATH of its own: the few commands it needs,
and stub `python3.X` scripts that answer for a Python of some version, or fail
as a pyenv shim of a version not selected does.
"""
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sandbox import ROOT, make_checkout

SUPPORTED = ["3.13", "3.12", "3.11"]  # pyproject.toml's requires-python, newest first
COMMANDS = ["bash", "env", "dirname", "sed", "seq", "paste", "rm"]  # what bin/setup runs before it picks
SHIM_FAILURE = 'echo "pyenv: $(basename "$0"): command not found" >&2; exit 127'


def test_the_supported_versions_are_those_of_pyproject():
    requires = re.search(r'^requires-python = "(.*)"$', (ROOT / "pyproject.toml").read_text(), re.MULTILINE)[1]
    assert requires == f">={SUPPORTED[-1]},<3.{int(SUPPORTED[0].split('.')[1]) + 1}"


@pytest.fixture
def bare(tmp_path):
    """A copy of bin/setup and pyproject.toml, and a PATH with only COMMANDS and a folder for stubs."""
    project = tmp_path / "project"
    (project / "bin").mkdir(parents=True)
    shutil.copy(ROOT / "bin" / "setup", project / "bin" / "setup")
    shutil.copy(ROOT / "pyproject.toml", project / "pyproject.toml")
    commands, stubs = tmp_path / "commands", tmp_path / "stubs"
    commands.mkdir()
    stubs.mkdir()
    for name in COMMANDS:
        (commands / name).symlink_to(shutil.which(name))
    return project, stubs, f"{stubs}:{commands}"


def stub(folder, name, body):
    path = folder / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)


def answers(version):
    """A stub that reports `version` when asked, and fails at anything else (making .tools)."""
    return f'[ "$1" = -c ] && echo {version} && exit 0; echo "cannot $*" >&2; exit 1'


def setup(project, path, **env):
    environment = {"PATH": path, "HOME": str(project), **env}
    return subprocess.run([project / "bin" / "setup"], cwd=project, env=environment, capture_output=True, text=True, timeout=60)


def refused(project, path, **env):
    done = setup(project, path, **env)
    assert done.returncode != 0
    assert done.stdout == ""
    [line] = done.stderr.splitlines()
    assert not (project / ".tools").exists() and not (project / ".venv").exists()
    return line


def test_without_a_supported_python_it_names_what_it_looked_for_and_found(bare):
    project, stubs, path = bare
    stub(stubs, "python3.13", SHIM_FAILURE)
    stub(stubs, "python3.12", SHIM_FAILURE)
    stub(stubs, "python3", answers("3.10"))
    line = refused(project, path)
    assert "python3.13, python3.12, python3.11, python3" in line
    assert "python3.13 (does not run) python3.12 (does not run) python3 (3.10)" in line
    assert "uv python install 3.13" in line and "pyenv install 3.13 && pyenv shell 3.13" in line


def test_with_no_python_at_all_it_says_so(bare):
    project, _, path = bare
    assert "found none of them" in refused(project, path)


def test_a_python_named_by_PYTHON_must_be_a_supported_one(bare):
    project, stubs, path = bare
    stub(stubs, "python3.13", answers("3.13"))  # would be taken without PYTHON
    stub(stubs, "python3.10", answers("3.10"))
    assert "PYTHON=python3.10 is Python 3.10; this project supports Python 3.13, 3.12, 3.11" in refused(project, path, PYTHON="python3.10")
    assert "PYTHON=python3.12 is not a Python that runs" in refused(project, path, PYTHON="python3.12")


def test_it_takes_the_newest_python_that_runs_and_cleans_up_when_it_fails(bare):
    project, stubs, path = bare
    stub(stubs, "python3.13", SHIM_FAILURE)
    stub(stubs, "python3.12", answers("3.12"))
    stub(stubs, "python3.11", 'echo "python3.11 was taken" >&2; exit 1')
    done = setup(project, path)
    # it went on with python3.12, whose `-m venv .tools` failed: what it began is gone
    assert done.returncode != 0 and "cannot -m venv .tools" in done.stderr
    assert "python3.11 was taken" not in done.stderr
    assert not (project / ".tools").exists() and not (project / ".venv").exists()


def real_pythons():
    """{minor version: path} of the supported Pythons of this machine: python3.X
    where it runs, else pyenv's newest installed 3.X."""
    found = {}
    for version in SUPPORTED:
        for candidate in [shutil.which(f"python{version}")] + pyenv_pythons(version):
            if candidate and subprocess.run([candidate, "-c", "1"], capture_output=True).returncode == 0:
                found[version] = candidate
                break
    return found


def pyenv_pythons(version):
    if not shutil.which("pyenv"):
        return []
    installed = subprocess.run(["pyenv", "versions", "--bare"], capture_output=True, text=True).stdout.split()
    newest_first = sorted((v for v in installed if v.startswith(f"{version}.")), key=lambda v: [int(p) for p in v.split(".") if p.isdigit()], reverse=True)
    return [subprocess.run(["pyenv", "prefix", v], capture_output=True, text=True).stdout.strip() + f"/bin/python{version}" for v in newest_first]


def venv_python(checkout):
    done = subprocess.run([checkout / ".venv" / "bin" / "python", "-c", "import sys, ploomber; print(sys.version.split()[0])"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_a_venv_of_another_python_is_made_again(tmp_path):
    pythons = real_pythons()
    if len(pythons) < 2:
        pytest.skip(f"needs two supported Pythons, found {sorted(pythons) or 'none'}")
    (first, first_path), (second, second_path) = list(pythons.items())[:2]
    checkout = make_checkout(tmp_path)
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    for version, python in ((first, first_path), (second, second_path)):
        done = subprocess.run(["bin/setup"], cwd=checkout.path, env={**env, "PYTHON": python}, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr
        assert venv_python(checkout.path).startswith(f"{version}.")
        # one Python's packages only, not the two mixed
        assert [p.name for p in (checkout.path / ".venv" / "lib").iterdir()] == [f"python{version}"]
