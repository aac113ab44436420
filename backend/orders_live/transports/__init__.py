"""Transports: how changes leave the service (Socket.IO, SSE, polling) and how orders are read
and written (REST). They know the hub, never a database. Shared by all: ``access`` (who may
do what), ``client_queue`` (each client's bounded queue), ``send_buffer``, ``metrics``,
``feed_requests`` (what a request for the feed may ask, how long it waits), ``direct_write``
(bytes straight to a client's socket)."""
