"""The rules of the driver's state, in plain words with citations (companion/app/portal/state_rules.py): the
driver's own page, a device's (from its record), and the monitoring authority's view of a driver."""

from fastapi import APIRouter, Request
from fastapi.responses import Response

from companion.app.api.deps import SessionDep
from companion.app.portal import state_rules
from companion.app.records import authority, timeline
from companion.app.web.session import render, visitor

router = APIRouter(prefix="/portal", include_in_schema=False)


@router.get("/rules")
def my_rules(request: Request, session: SessionDep) -> Response:
    """The driver's state's rules (the preset the account's handsets are given)."""
    v = visitor(request, session)
    user = v.require("driver")
    assert user.account_id is not None
    return render(v, "rules.html", r=state_rules.of_account(session, user.account_id), back=None,
                  marks=state_rules.MARKS, labels=state_rules.LABELS, kept_by=state_rules.KEPT_BY)


@router.get("/record/{link_id}/rules")
def device_rules(request: Request, session: SessionDep, link_id: int) -> Response:
    """The rules the device's handset runs, for whoever may read its record."""
    v = visitor(request, session)
    user = v.require("driver", "authority", "staff")
    link = timeline.readable_device(session, user, link_id)
    return render(v, "rules.html", r=state_rules.of_device(session, link), back="/portal/record/%d" % link.id,
                  marks=state_rules.MARKS, labels=state_rules.LABELS, kept_by=state_rules.KEPT_BY)


@router.get("/authority/drivers/{account_id}/rules")
def driver_rules(request: Request, session: SessionDep, account_id: int) -> Response:
    """The rules of an assigned driver's state (404 for any other driver)."""
    v = visitor(request, session)
    user = v.require("authority", "staff")
    account = authority.assigned_account(session, user, account_id)
    return render(v, "rules.html", r=state_rules.of_account(session, account.id),
                  back="/portal/authority/drivers/%d" % account.id,
                  marks=state_rules.MARKS, labels=state_rules.LABELS, kept_by=state_rules.KEPT_BY)
