"""What python-engineio and python-socketio log when a client's bytes break their parsers.

The direct path refuses bad packets before the libraries see them (``packet_guard``); what
still reaches them (the libraries' own path, or Engine.IO-level garbage in a long-polling
POST) makes them log a traceback at ERROR, so a client could flood the log. This filter turns
such a record into one warning line and counts it. A traceback that passes through
orders-live's own code is left as it is: that is a bug of ours, and its traceback is wanted.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from types import TracebackType

from aiohttp import web
from aiohttp.typedefs import Middleware

LOGGERS = ("engineio.server", "socketio.server")
PARSE_ERRORS = (ValueError, TypeError, IndexError, KeyError, RecursionError, json.JSONDecodeError)
OUR_CODE = "/orders_live/"
ONCE = "(further occurrences of this error will be logged with level INFO)"  # Engine.IO's client errors
log = logging.getLogger(__name__)
POST_WITHIN = 3.0  # seconds: a long-polling POST only hands its packets over; longer is a closed session


class LibraryParseErrorsQuiet(logging.Filter):
    def __init__(self) -> None:
        super().__init__()
        self.counters: list[Callable[[str], None]] = []

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.exc_info and record.levelno >= logging.ERROR and ONCE in str(record.msg):
            # A bad version, transport or session id: the client's mistake, said once at ERROR.
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            return True
        if not record.exc_info or not isinstance(record.exc_info[1], PARSE_ERRORS):
            return True
        if through_our_code(record.exc_info[2]):
            return True
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


def through_our_code(trace: TracebackType | None) -> bool:
    while trace is not None:
        if OUR_CODE in trace.tb_frame.f_code.co_filename:
            return True
        trace = trace.tb_next
    return False


def engine_requests_refused(prefix: str, count: Callable[[str], None]) -> Middleware:
    """The innermost middleware: a request to Engine.IO's endpoint that breaks the library
    (a polling request for a session it has just closed raises ``KeyError``; a bad base64
    payload ``ValueError``) gets 400 and one warning line, not a 500 and a traceback."""

    @web.middleware
    async def refuse(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if not request.path.startswith(prefix):
            return await handler(request)
        try:
            if request.method != "POST":
                return await handler(request)
            # A long-polling POST is answered at once, unless the packets it carries made
            # Engine.IO close the session (an unknown packet type, a payload past its limit):
            # then it waits for the client to fetch the close with a GET it may never send
            # (until the ping timeout, ~45 s). Cut short, the session is closed already and
            # Engine.IO's own sweep removes it.
            async with asyncio.timeout(POST_WITHIN):
                return await handler(request)
        except TimeoutError:
            count("stuck polling post")
            log.warning("refused a long-polling POST from %s: its packets closed the session", request.remote or "?")
            return web.Response(status=400, text="Bad Request")
        except PARSE_ERRORS as exc:
            trace = exc.__traceback__
            if through_our_code(trace.tb_next if trace is not None else None):
                raise
            reason = type(exc).__name__
            count(reason)
            log.warning("refused an Engine.IO request from %s (%s: %.80s)", request.remote or "?", reason, exc)
            return web.Response(status=400, text="Bad Request")

    return refuse
