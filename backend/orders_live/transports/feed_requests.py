"""What every transport allows a client's request for the change feed, in one place (the REST
reads, SSE, polling and Socket.IO's ``subscribe`` refuse the same way).

- ``MAX_POSITION_LENGTH``: the longest position a client may hand back (``since``,
  ``Last-Event-ID``); longer is refused as invalid input before any source sees it. Sources
  make far shorter ones.
- ``READY_WAIT``: how long a request for the feed waits for it to become live before it is
  answered ``unavailable`` (HTTP 503, or the ack's error). One meaning, so one value, 5 s: the
  HTTP endpoints always waited 5 s; Socket.IO's subscribe waited 10 s, and that wait plus a
  snapshot's read (``database_timeout``, 5 s by default) reached the dashboard's 15 s ack
  timeout, so the client gave up on an answer still to come.
"""

from __future__ import annotations

MAX_POSITION_LENGTH = 4096
READY_WAIT = 5.0
