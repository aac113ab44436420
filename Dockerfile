# orders-live service image: the dashboard is built with Node.js, then served by the
# Python service from a slim image, as a non-root user.

FROM node:20-slim AS dashboard
WORKDIR /build/frontend
COPY frontend/package.json frontend/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY frontend/ ./
RUN npm run build

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    ORDERS_LIVE_FRONTEND_DIR=/app/frontend/dist
WORKDIR /app
COPY backend/ ./backend/
# The PostgreSQL schema: backend/orders_live/sources/postgres/sql links to it.
COPY postgres/ ./postgres/
RUN pip install ./backend \
    && rm -rf ./backend ./postgres \
    && useradd --system --uid 10001 --home-dir /app --no-create-home orders-live \
    && mkdir -p /app/data \
    && chown orders-live /app/data
COPY --from=dashboard /build/frontend/dist /app/frontend/dist
USER orders-live
EXPOSE 8080
# docker-compose.yml sets MONGO_URL to its replica set (DATABASE_URL to PostgreSQL in its
# postgres profile). Without either the service starts the embedded nx-27017 under /app/data
# (lost with the container unless it is a volume).
CMD ["orders-live", "serve", "--host", "0.0.0.0", "--port", "8080"]
