"""Structured logging with structlog: key-value events, console or JSON lines.

Call :func:`configure` once from the composition root; modules get loggers with
``structlog.get_logger(__name__)`` and log events as
``log.info("mission.started", mission_id=...)``.
Standard-library logging (uvicorn, alembic, amqtt) is routed through the same renderer.
"""

from __future__ import annotations

import logging
import sys

import structlog


def configure(level: str = "info", json_output: bool = False) -> None:
    """Configure structlog and the standard library's root logger."""
    lvl = getattr(logging, level.upper())
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
    ]
    renderer: structlog.types.Processor
    if json_output:
        renderer = structlog.processors.JSONRenderer()
        shared.append(structlog.processors.format_exc_info)
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    structlog.configure(
        processors=[
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(lvl)
    # chatty libraries
    for name in ("amqtt", "transitions", "aiosqlite", "httpx", "httpcore", "hpack", "alembic"):
        logging.getLogger(name).setLevel(max(lvl, logging.WARNING))
