"""The REST API under /api/v1 (FastAPI routers, one per domain) and the app factory."""
