"""Malformed HTTP requests (a request line or header over 8,190 bytes, a bad Content-Length):
aiohttp answers them 400 itself, and logs each with a traceback at ERROR. A client could flood
the log that way, so each becomes one warning line, without the request's bytes (they may hold
a ``?token=``).

A body whose ``Content-Encoding`` does not decode is one too: aiohttp decodes a body as it
arrives, and after the response it drains what the handler left unread, which raises the
decoding error again, logged as "Unhandled exception" (a ``RequestPayloadError`` caused by
its ``ContentEncodingError``). A handler that reads such a body answers 400 itself."""

from __future__ import annotations

import logging

from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestPayloadError


class MalformedRequestsQuiet(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, RequestPayloadError) and record.msg == "Unhandled exception":
            error = error.__cause__  # the payload's own error, raised again by the drain
            record.args = ("the client",)
        if isinstance(error, HttpProcessingError):
            who = record.args[0] if isinstance(record.args, tuple) and record.args else "?"
            record.msg, record.args = (
                "refused a malformed HTTP request from %s (%s, HTTP %s)",
                (
                    who,
                    type(error).__name__,
                    error.code,
                ),
            )
            record.exc_info, record.exc_text = None, None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


QUIET = MalformedRequestsQuiet()


def quiet_malformed_requests() -> None:
    """Install the filter on aiohttp's server logger (once, however many services start)."""
    logging.getLogger("aiohttp.server").addFilter(QUIET)
