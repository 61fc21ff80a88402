import pytest

from sandbox import make_project


@pytest.fixture
def project(tmp_path):
    return make_project(tmp_path)


@pytest.fixture(scope="module")
def built_project(tmp_path_factory):
    """The default grid, built once with tracking on, shared by a module's tests."""
    project = make_project(tmp_path_factory.mktemp("built"))
    decoy = project.path / "decoy.db"
    # a hook that forgot the build's URI would write here instead
    project.build(env={"MLFLOW_TRACKING_URI": f"sqlite:///{decoy}"})
    project.decoy = decoy
    return project
