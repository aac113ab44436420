"""What every layer shares: the order, a change, subscription filters and rooms, and the seam
to a database (``domain.source``). It imports nothing else of the package."""
