"""Model files: saved with skops and the reviewed trusted types, never pickle."""

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
    refuse_untrusted(needed, what=type(model).__name__)
    return needed


def load_model(model_uri, tracking_uri):
    """A logged model, ready to predict raw rows: `load_model(uri, ...).predict(raw)`.

    The estimator is loaded with skops, trusting only SKOPS_TRUSTED_TYPES: the
    list shipped with a model is not used, nor is any code shipped with it,
    since whoever can edit the artifacts can edit those too.
    """
    import mlflow

    from tracking.raw_model import load_raw_model

    connect(tracking_uri)  # models:/ URIs resolve through the global URI
    return load_raw_model(mlflow.artifacts.download_artifacts(model_uri))


def pip_requirements():
    """What a logged model needs, listed: MLflow's inference of it spawns a slow subprocess."""
    from importlib.metadata import version

    return [f"{name}=={version(name)}" for name in ("mlflow", "scikit-learn", "skops", "pandas", "numpy")]


def refuse_untrusted(types, what, trusted=SKOPS_TRUSTED_TYPES):
    untrusted = sorted(set(types) - set(trusted))
    if untrusted:
        raise UntrustedModelError(
            f"{what} holds types outside SKOPS_TRUSTED_TYPES in tracking/model_files.py: {', '.join(untrusted)}"
        )
