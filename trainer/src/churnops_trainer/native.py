"""The native pipeline (scikit-learn + LightGBM) as a file for parity checks: skops, never a pickle.

A pickle runs whatever code its author put in it when it is loaded, so a file that comes from an artifact store
or a path a bundle names must not be one. skops stores the same objects as data and, on load, builds only the
types on TRUSTED_TYPES (besides skops' own safe defaults: scikit-learn estimators, numpy arrays, builtins);
a file that holds anything else, or is not a skops file at all, is refused before any of it is built.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from churnops_trainer.errors import BundleError

#: What the trainer's pipeline holds beyond skops' defaults (`skops.io.get_untrusted_types` of a fitted one).
TRUSTED_TYPES = (
    "churnops_trainer.features.Float32Imputer",
    "churnops_trainer.features.RatioFeatures",
    "churnops_trainer.models.Float32LGBMClassifier",
    "collections.OrderedDict",
    "lightgbm.basic.Booster",
    "numpy.dtype",
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
)


def save_native(pipeline: Any, path: Path) -> Path:
    """Write the fitted pipeline to `path` in skops' format."""
    import skops.io as sio

    sio.dump(pipeline, path)
    return path


def load_native(path: Path) -> Any:
    """The pipeline in a skops file, refused (BundleError) if it holds an untrusted type or is not skops."""
    import skops.io as sio

    try:
        untrusted = sorted(set(sio.get_untrusted_types(file=path)) - set(TRUSTED_TYPES))
    except Exception as exc:  # a zip/JSON parse error of whatever was planted there: report, never execute
        raise BundleError(
            f"{path} is not a skops file of the native pipeline ({type(exc).__name__}); not loaded"
        ) from None
    if untrusted:
        raise BundleError(f"{path} holds types outside the trusted list: {', '.join(untrusted)}; not loaded")
    return sio.load(path, trusted=list(TRUSTED_TYPES))
