"""One error family: a user error prints its message and exits 2, without a traceback."""


class TrainerError(Exception):
    """Base class for errors the trainer reports to the user as one line."""

    exit_code = 2


class DataError(TrainerError):
    """The input table (or dataset spec) cannot be used as given."""


class RegistryError(TrainerError):
    """A registered model, version or alias does not exist or cannot be changed."""


class BundleError(TrainerError):
    """A model bundle is malformed, tampered with, or disagrees with its golden vectors."""


class ExportRefused(TrainerError):
    """The ONNX graph disagrees with the native pipeline beyond tolerance; nothing is exported."""
