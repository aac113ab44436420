"""orders-live: every change of a MongoDB ``orders`` collection, pushed to every client as it commits."""

__version__ = "0.1.0"
