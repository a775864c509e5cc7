"""Health and server time (the trivial endpoints the bench compares the sync endpoint with)."""

from fastapi import APIRouter

from companion.app.core import timebase
from companion.app.schemas import Health, ServerTime

router = APIRouter(prefix="/utils", tags=["utils"])


@router.get("/health")
async def health() -> Health:
    """Liveness: answers without touching the database."""
    return Health(status="ok")


@router.get("/time")
async def server_time() -> ServerTime:
    """The companion's clock in device seconds (s since 2024-01-01T00:00Z)."""
    return ServerTime(time=timebase.device_now())
