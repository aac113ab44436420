# orders-live service image. Only the Python backend for now; a build stage for the browser
# dashboard can be added once frontend/ has one.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

COPY backend/ ./backend/
RUN pip install ./backend \
    && rm -rf ./backend \
    && useradd --system --uid 10001 --home-dir /app --no-create-home orders-live \
    && mkdir -p /app/data \
    && chown orders-live /app/data

USER orders-live

EXPOSE 8080

# docker-compose.yml sets MONGO_URL to its MongoDB replica set. Without MONGO_URL the service
# starts the embedded nx-27017 under /app/data (lost with the container unless it is a volume).
CMD ["orders-live", "serve", "--host", "0.0.0.0", "--port", "8080"]
