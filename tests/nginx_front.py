"""Debian's nginx in front of service instances, from the repository's own nginx/nginx.conf:
the bench's class (``orders_live.bench.balancer``), which the fault test uses as it is."""

from __future__ import annotations

from orders_live.bench.balancer import NGINX, NginxFront, nginx_available

__all__ = ["NGINX", "NginxFront", "nginx_available"]
