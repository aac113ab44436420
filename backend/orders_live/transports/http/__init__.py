"""HTTP transports: the REST API, Server-Sent Events, the polling baseline, access rules,
JSON errors, the access log, and the health and metrics endpoints."""
