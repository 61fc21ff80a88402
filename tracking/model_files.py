"""Model files: saved with skops and the reviewed trusted types, never pickle."""
from pathlib import Path

from tracking.store import connect

# Types skops may load beyond its own defaults. Each is a scikit-learn data
# structure with no code-execution hook, reviewed by hand; together they cover
# every default-constructible scikit-learn classifier. A model that needs
# another type fails to log, naming the type, rather than fall back to pickle.
SKOPS_TRUSTED_TYPES = (
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.gaussian_process._gpc._BinaryGaussianProcessClassifierLaplace",
    "sklearn.gaussian_process.kernels.ConstantKernel",
    "sklearn.gaussian_process.kernels.Product",
    "sklearn.gaussian_process.kernels.RBF",
    "sklearn.metrics._dist_metrics.EuclideanDistance64",
    "sklearn.neighbors._ball_tree.BallTree",
    "sklearn.neighbors._kd_tree.KDTree",
    "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",
    "sklearn.neural_network._stochastic_optimizers.SGDOptimizer",
    "sklearn.tree._tree.Tree",
)


class UntrustedModelError(RuntimeError):
    """A model file that holds types outside SKOPS_TRUSTED_TYPES."""


def trusted_types_for(model):
    """The non-default skops types `model` needs; all must be in SKOPS_TRUSTED_TYPES."""
    import skops.io

    needed = sorted(skops.io.get_untrusted_types(data=skops.io.dumps(model)))
    _refuse_untrusted(needed, what=type(model).__name__)
    return needed


def load_model(model_uri, tracking_uri):
    """Load a logged model with skops, trusting only SKOPS_TRUSTED_TYPES.

    The trusted list stored with a model is not used: whoever can edit the
    artifact can edit that list too.
    """
    import mlflow
    import skops.io
    import yaml

    connect(tracking_uri)  # models:/ URIs resolve through the global URI
    local = Path(mlflow.artifacts.download_artifacts(model_uri))
    flavor = yaml.safe_load((local / "MLmodel").read_text())["flavors"]["sklearn"]
    if flavor.get("serialization_format") != "skops":
        raise UntrustedModelError(f"{model_uri} is not saved with skops; refusing to unpickle it")
    model_file = local / flavor["pickled_model"]
    needed = skops.io.get_untrusted_types(file=model_file)
    _refuse_untrusted(needed, what=model_uri)
    return skops.io.load(model_file, trusted=needed)


def pip_requirements():
    """What a logged model needs, listed: MLflow's inference of it spawns a slow subprocess."""
    from importlib.metadata import version

    return [f"{name}=={version(name)}" for name in ("mlflow", "scikit-learn", "skops", "pandas", "numpy")]


def _refuse_untrusted(types, what):
    untrusted = sorted(set(types) - set(SKOPS_TRUSTED_TYPES))
    if untrusted:
        raise UntrustedModelError(
            f"{what} holds types outside SKOPS_TRUSTED_TYPES in tracking/model_files.py: {', '.join(untrusted)}"
        )
