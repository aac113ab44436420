"""``orders-live bench``: the service in its own process, lean clients in others, a writer,
and a report of latency, losses, CPU and memory. Talks to the service only over the wire."""
