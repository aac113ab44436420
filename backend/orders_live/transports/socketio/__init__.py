"""The Socket.IO transport. ``gateway`` speaks the protocol, ``connection`` owns each client's
queue and writer, ``packet_guard`` checks what clients send, and ``_engine`` holds every
reach into the libraries' internals."""

from orders_live.transports.socketio.gateway import SocketGateway

__all__ = ["SocketGateway"]
