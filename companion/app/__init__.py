"""The companion application package (FastAPI)."""
