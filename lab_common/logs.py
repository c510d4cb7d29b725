"""One log format for every process, naming the copy that wrote each line; message texts cut short in it."""

from __future__ import annotations

import logging
import sys

MESSAGE_PREFIX = 32  # characters of a message text a log line shows
ERROR_PREFIX = 200  # of an error's text, which may quote what was sent (CPython cuts what it quotes there too)


def clipped(text: str, keep: int = MESSAGE_PREFIX) -> str:
    """`text` quoted for a log line: whole up to `keep` characters, else its first `keep`, an ellipsis and its
    length (`'hello wor…' (5000 chars)`), so that no line carries a whole message."""
    if len(text) <= keep:
        return repr(text)
    return f"{text[:keep] + '…'!r} ({len(text)} chars)"


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
