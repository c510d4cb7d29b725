"""One log format for every process, naming the copy that wrote each line."""

from __future__ import annotations

import logging
import sys


def configure_logging(instance: str, level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter(f"%(asctime)s %(levelname)-7s [{instance}] %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # the Hazelcast client logs every connection attempt at INFO; keep its warnings and errors
    logging.getLogger("hazelcast").setLevel(max(logging.WARNING, root.level))
    logging.getLogger("urllib3").setLevel(logging.WARNING)
