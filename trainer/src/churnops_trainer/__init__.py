"""churnops trainer: churn models from any customer table, exported as verified ONNX bundles."""

__version__ = "0.1.0"
