"""The API router: every resource router under /api/v1."""

from fastapi import APIRouter

from companion.app.api.routes import accounts, billing, commands, handsets, portal, service, sync, utils

api_router = APIRouter()
api_router.include_router(utils.router)
api_router.include_router(accounts.router)
api_router.include_router(handsets.router)
api_router.include_router(commands.router)
api_router.include_router(sync.router)
api_router.include_router(portal.router)
api_router.include_router(billing.router)
api_router.include_router(billing.hooks)
api_router.include_router(service.router)
