"""What python-engineio and python-socketio log when a client's bytes break their parsers.

The direct path refuses bad packets before the libraries see them (``packet_guard``); what
still reaches them (the libraries' own path, or Engine.IO-level garbage in a long-polling
POST) makes them log a traceback at ERROR, so a client could flood the log. This filter turns
such a record into one warning line and counts it. A traceback that passes through
orders-live's own code is left as it is: that is a bug of ours, and its traceback is wanted.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

LOGGERS = ("engineio.server", "socketio.server")
PARSE_ERRORS = (ValueError, TypeError, IndexError, KeyError, RecursionError, json.JSONDecodeError)
OUR_CODE = "/orders_live/"


class LibraryParseErrorsQuiet(logging.Filter):
    def __init__(self) -> None:
        super().__init__()
        self.counters: list[Callable[[str], None]] = []

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.exc_info or not isinstance(record.exc_info[1], PARSE_ERRORS):
            return True
        trace = record.exc_info[2]
        while trace is not None:
            if OUR_CODE in trace.tb_frame.f_code.co_filename:
                return True
            trace = trace.tb_next
        error = record.exc_info[1]
        reason = type(error).__name__
        record.msg, record.args = "refused a malformed packet (%s: %.80s, in %s)", (reason, error, record.getMessage())
        record.exc_info, record.exc_text = None, None
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        for count in self.counters:
            count(reason)
        return True


QUIET = LibraryParseErrorsQuiet()


def quiet_library_parse_errors(count: Callable[[str], None]) -> Callable[[], None]:
    """Install the filter (once per process) and count refusals with ``count``; returns the
    function that stops counting with it."""
    for name in LOGGERS:
        logging.getLogger(name).addFilter(QUIET)
    QUIET.counters.append(count)
    return lambda: QUIET.counters.remove(count)
