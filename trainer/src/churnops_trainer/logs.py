"""Logging on stderr (stdout is reserved for results): JSON lines for machines, short lines for people.

JSON when stderr is not a terminal or `CHURNOPS_LOG_FORMAT=json`; human lines on a terminal or with
`CHURNOPS_LOG_FORMAT=text`. `CHURNOPS_LOG_LEVEL` (debug, info, warn, error, silent; as the TypeScript side)
sets the trainer's level.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, TextIO

from churnops_trainer.errors import TrainerError

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


class HumanFormatter(logging.Formatter):
    """One short line: time, the level when it is not info, the event, then its fields as key=value."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%H:%M:%S", time.localtime(record.created))
        level = "" if record.levelno == logging.INFO else f"{record.levelname.lower()}: "
        fields = {k: v for k, v in record.__dict__.items() if k not in _RESERVED and not k.startswith("_")}
        progress = fields.pop("progress", None)
        step = fields.pop("step", None)
        head = " ".join(str(p) for p in (f"[{progress}]" if progress else None, step) if p)
        seconds = fields.pop("seconds", None)
        message = _STEP_WORDS.get(record.getMessage(), record.getMessage()) if step else record.getMessage()
        text = f"{stamp} {level}{head + ' ' if head else ''}{message}"
        if seconds is not None:
            text += f" in {seconds:.1f} s"
        if fields:
            text += "  " + " ".join(f"{k}={_short(v)}" for k, v in fields.items())
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


_STEP_WORDS = {"step started": "…", "step finished": "done"}


def _short(value: Any, limit: int = 80) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str, separators=(",", ":"))
    return text if len(text) <= limit else text[: limit - 1] + "…"


LEVELS = {
    "trace": logging.DEBUG,
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "fatal": logging.CRITICAL,
    "silent": logging.CRITICAL + 10,
}


def level_from_env() -> int:
    """CHURNOPS_LOG_LEVEL as a logging level (default info); an unknown name is a user error."""
    name = os.environ.get("CHURNOPS_LOG_LEVEL", "info").strip().lower() or "info"
    if name not in LEVELS:
        raise TrainerError(f"CHURNOPS_LOG_LEVEL={name!r} is not one of {', '.join(LEVELS)}")
    return LEVELS[name]


def human_logs(stream: TextIO) -> bool:
    """Human lines on a terminal unless CHURNOPS_LOG_FORMAT says json (text forces them anywhere)."""
    wanted = os.environ.get("CHURNOPS_LOG_FORMAT", "").strip().lower()
    if wanted not in ("", "json", "text"):
        raise TrainerError(f"CHURNOPS_LOG_FORMAT={wanted!r} is not json or text")
    return wanted == "text" or (wanted == "" and stream.isatty())


def configure(level: int | None = None, stream: TextIO | None = None) -> None:
    """Send the trainer's logs to stderr (see the module docstring); quieten chatty third-party loggers."""
    stream = stream or sys.stderr
    handler = logging.StreamHandler(stream)
    handler.setFormatter(HumanFormatter() if human_logs(stream) else JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    logging.getLogger(LOGGER_NAME).setLevel(level_from_env() if level is None else level)
    for noisy in ("mlflow", "alembic", "urllib3", "matplotlib", "skl2onnx", "optuna"):
        logging.getLogger(noisy).setLevel(logging.ERROR)


def get_logger(name: str) -> logging.Logger:
    """A child of the trainer's logger."""
    return logging.getLogger(f"{LOGGER_NAME}.{name}")


@dataclass
class Progress:
    """Counts the steps of a long command so that each step's lines say `k/total`."""

    total: int
    done: int = 0


_PROGRESS: ContextVar[Progress | None] = ContextVar("churnops_progress", default=None)


@contextmanager
def progress(total: int) -> Iterator[Progress]:
    """Within this block, every `timed` step in this thread counts towards `total`."""
    state = Progress(total)
    token = _PROGRESS.set(state)
    try:
        yield state
    finally:
        _PROGRESS.reset(token)


@contextmanager
def timed(log: logging.Logger, step: str, timings: dict[str, float] | None = None, **fields: Any) -> Iterator[None]:
    """Log the start and end of a long step (with its duration and, inside `progress`, its k/total)."""
    state = _PROGRESS.get()
    if state is not None:
        state.done += 1
        fields = {"progress": f"{state.done}/{state.total}", **fields}
    start = time.perf_counter()
    log.info("step started", extra={"step": step, **fields})
    yield
    elapsed = round(time.perf_counter() - start, 3)
    if timings is not None:
        timings[step] = elapsed
    log.info("step finished", extra={"step": step, "seconds": elapsed, **fields})
