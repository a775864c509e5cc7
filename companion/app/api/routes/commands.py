"""Commands by id: where a command is (queued, delivered, applied, refused, expired)."""

from typing import Annotated

from fastapi import APIRouter, Path

from companion.app import crud
from companion.app.api.deps import AdminDep, SessionDep
from companion.app.core.problems import Problem
from companion.app.models import Command
from companion.app.schemas import CommandPublic

router = APIRouter(prefix="/commands", tags=["commands"])


@router.get("/{command_id}")
def read_command(session: SessionDep, _admin: AdminDep,
                       command_id: Annotated[int, Path(ge=1, le=2**31 - 1)]) -> CommandPublic:
    """One command and its status."""
    cmd = session.get(Command, command_id)
    if cmd is None:
        raise Problem(404, "not-found", "no such command")
    return crud.command_public(cmd)
