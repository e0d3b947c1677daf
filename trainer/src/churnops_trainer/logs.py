"""Structured logging: one JSON object per line on stderr (stdout is reserved for results)."""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

LOGGER_NAME = "churnops_trainer"
_RESERVED = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON line: time, level, event and any `extra` fields."""

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("_"):
                payload[key] = value
        if record.exc_info:
            payload["exc"] = self.formatException(record.exc_info)
        return json.dumps(payload, default=str)


def configure(level: int = logging.INFO) -> None:
    """Send the trainer's logs to stderr as JSON lines; quieten chatty third-party loggers."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    logging.getLogger(LOGGER_NAME).setLevel(level)
    for noisy in ("mlflow", "alembic", "urllib3", "matplotlib", "skl2onnx", "optuna"):
        logging.getLogger(noisy).setLevel(logging.ERROR)


def get_logger(name: str) -> logging.Logger:
    """A child of the trainer's logger."""
    return logging.getLogger(f"{LOGGER_NAME}.{name}")


@contextmanager
def timed(log: logging.Logger, step: str, timings: dict[str, float] | None = None, **fields: Any) -> Iterator[None]:
    """Log the start and end of a long step (with its duration) and optionally record it."""
    start = time.perf_counter()
    log.info("step started", extra={"step": step, **fields})
    yield
    elapsed = round(time.perf_counter() - start, 3)
    if timings is not None:
        timings[step] = elapsed
    log.info("step finished", extra={"step": step, "seconds": elapsed, **fields})
