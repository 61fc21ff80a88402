"""Estimator files: saved and loaded with skops and the reviewed trusted types, never pickle.

Nothing here knows MLflow: the logged model around the file is tracking/raw_model.py.
"""
import heapq
import importlib.abc
import importlib.machinery
import sys
import types
import warnings
import zipfile

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


COMPRESSION_LEVEL = 3


class UntrustedModelError(RuntimeError):
    """A model file that holds types outside SKOPS_TRUSTED_TYPES."""


def dump_estimator(model, path):
    """Save `model` to `path` with skops, refusing a type outside SKOPS_TRUSTED_TYPES before writing.

    The file is a deflated zip (skops' own compression, read back by any
    skops.io.load): a forest's arrays shrink to a quarter. Level 3 of 9: for
    a 20-tree forest of 70,000 rows, zlib's default (6) took 0.35 s against
    0.14 s, for a file 7% smaller.
    """
    skops_io = import_skops_io()
    # serialized once, both to check the types and to save
    data = skops_io.dumps(model, compression=zipfile.ZIP_DEFLATED, compresslevel=COMPRESSION_LEVEL)
    refuse_untrusted(skops_io.get_untrusted_types(data=data), what=type(model).__name__)
    path.write_bytes(data)


def load_estimator(path, trusted=SKOPS_TRUSTED_TYPES):
    """The skops file at `path`, refused if it holds a type outside `trusted`."""
    skops_io = import_skops_io()
    needed = skops_io.get_untrusted_types(file=path)
    refuse_untrusted(needed, what=str(path), trusted=trusted)
    return skops_io.load(path, trusted=needed)


def refuse_untrusted(types, what, trusted=SKOPS_TRUSTED_TYPES):
    untrusted = sorted(set(types) - set(trusted))
    if untrusted:
        raise UntrustedModelError(
            f"{what} holds types outside SKOPS_TRUSTED_TYPES in tracking/model_files.py: {', '.join(untrusted)}"
        )


def import_skops_io():
    """skops.io, imported in a fraction of the time its import takes in a build.

    On import skops lists scipy's ufuncs by the module each comes from, and
    finds that module by trying every loaded module in turn, for each of some
    800 ufuncs. A build's process has 4,500 modules loaded (Ploomber, MLflow,
    scikit-learn), so that took 1.5 to 2.5 s of the start-up before any fit.
    During the import only, skops' lookup goes through an index of which
    modules hold which name; it answers exactly what the scan answers
    (tests/test_model_files.py compares the lists skops builds either way).
    """
    if "skops.io" in sys.modules:
        return sys.modules["skops.io"]
    finder = _IndexedLookupDuringImport()
    sys.meta_path.insert(0, finder)
    try:
        import skops.io
    finally:
        sys.meta_path.remove(finder)
        if finder.patched is not None:
            finder.patched.whichmodule = finder.original
    return skops.io


class _IndexedLookupDuringImport(importlib.abc.MetaPathFinder):
    """Swaps skops.io._utils.whichmodule for an indexed one as soon as that module has run."""

    MODULE = "skops.io._utils"

    def __init__(self):
        self.patched = self.original = None

    def find_spec(self, fullname, path, target=None):
        if fullname != self.MODULE:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return spec
        run = spec.loader.exec_module

        def exec_module(module):
            run(module)
            if callable(getattr(module, "whichmodule", None)):
                self.patched, self.original = module, module.whichmodule
                module.whichmodule = _indexed_whichmodule(module.whichmodule)

        spec.loader.exec_module = exec_module
        return spec


def _indexed_whichmodule(scan):
    """skops' whichmodule(obj, name): the first module, in sys.modules order,
    whose attribute `name` is `obj`. Modules whose attributes are not just
    their __dict__ (a module __getattr__, a module still running, another
    type) are asked every time; the others are looked up by name."""
    index = {"size": -1}

    def refresh():
        modules = [(n, m) for n, m in sys.modules.copy().items() if n not in ("__main__", "__mp_main__") and m is not None]
        holders, dynamic = {}, []
        for position, (_, module) in enumerate(modules):
            attributes = getattr(module, "__dict__", None)
            if (
                type(module) is not types.ModuleType
                or not isinstance(attributes, dict)
                or "__getattr__" in attributes
                or getattr(getattr(module, "__spec__", None), "_initializing", False)
            ):
                dynamic.append(position)
                continue
            for name in attributes:
                holders.setdefault(name, []).append(position)
        index.update(size=len(sys.modules), modules=modules, holders=holders, dynamic=dynamic)

    def whichmodule(obj, name):
        if getattr(obj, "__module__", None) is not None or "." in name or hasattr(types.ModuleType, name):
            return scan(obj, name)
        if len(sys.modules) != index["size"]:
            refresh()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            for position in heapq.merge(index["holders"].get(name, ()), index["dynamic"]):
                module_name, module = index["modules"][position]
                try:
                    found = getattr(module, name, None)
                except (AttributeError, ImportError):
                    continue
                if found is obj:
                    return module_name
        return "__main__"

    return whichmodule
