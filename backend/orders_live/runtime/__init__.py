"""How the service runs its own work: retry delays (``backoff``) and owned, supervised
background tasks (``supervisor``)."""
