"""smpmgr plugin: the interlock group (100) of the handset's service port.

    smpmgr --plugin-path=technician/smpmgr_plugin --port /dev/ttyUSB0 interlock --token tech.json status

Commands: login, status, log, calibrate, module, service, clear, policy, clock (the technician CLI's set).
Each command logs in with the token first; `login` alone leaves the session open, so that in
`smpmgr interactive` smpmgr's own commands (`file download /log/events.bin`) run inside it.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Any, cast

import typer
from rich import print as rprint
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn
from smpmgr.common import Options, connect_with_spinner, get_smpclient

# smpmgr loads this file by path; `technician` and `interlock` come from the installed project (pip install .)
from technician import client as tc
from technician import protocol as p
from technician.token import Token

app = typer.Typer(name="interlock", help="The interlock handset's technician group (100).")


def _run(ctx: typer.Context, job: Any, logout: bool = True) -> Any:
    options = cast(Options, ctx.obj)
    token_path = ctx.meta.get("interlock_token")
    if token_path is None:
        rprint("[red]--token is required[/red]")
        raise typer.Exit(code=1)
    try:
        token = Token.load(token_path)
    except (OSError, ValueError) as e:
        rprint(f"[red]{e}[/red]")
        raise typer.Exit(code=1) from None
    client = get_smpclient(options)

    async def go() -> Any:
        await connect_with_spinner(client)
        logged_in = False
        try:
            await tc.login(client, token)
            logged_in = True
            return await job(client)
        except tc.NoAnswer:
            logged_in = False  # nobody to log out from
            raise
        finally:
            try:
                if logout and logged_in:
                    # after a refused command too: the session must not outlive the command
                    await tc.call(client, p.Logout())
            except tc.ServiceError:
                pass
            finally:
                if logout:
                    await client.disconnect()

    try:
        return asyncio.run(go())
    except tc.ServiceError as e:
        rprint(f"[red]{e}[/red]")
        raise typer.Exit(code=1) from None
    except ValueError as e:  # smpmgr's serial default caps requests near 169 bytes
        rprint(f"[red]{e}[/red] (give smpmgr a larger --line-buffers, e.g. 16)")
        raise typer.Exit(code=1) from None


@app.callback()
def options(
    ctx: typer.Context,
    token: Annotated[Path | None, typer.Option(help="Technician token JSON from the companion")] = None,
) -> None:
    """Technician commands; every one logs in with --token first."""
    ctx.meta["interlock_token"] = token


@app.command()
def login(ctx: typer.Context) -> None:
    """Log in and leave the session open (for smpmgr interactive)."""
    _run(ctx, lambda c: asyncio.sleep(0), logout=False)
    rprint("logged in")


@app.command()
def status(ctx: typer.Context) -> None:
    """Show the handset's state."""
    rsp = _run(ctx, lambda c: tc.call(c, p.Status()))
    rprint(rsp.status)


@app.command()
def log(ctx: typer.Context, out: Annotated[Path, typer.Argument(help="Destination file")] = Path("events.bin")) -> None:
    """Download the event log (progress bar) and verify its hash chain."""
    with Progress(TextColumn("log"), BarColumn(), DownloadColumn(), TransferSpeedColumn()) as bar:
        task = bar.add_task("download", total=None)
        data = _run(ctx, lambda c: tc.download(c, tc.LOG_FILE,
                                               lambda d, t: bar.update(task, completed=d, total=t)))
    out.write_bytes(data)
    check = tc.check_log(data)
    if not check.ok:
        rprint(f"[red]chain check FAILED at record index {check.bad_index}: {check.reason}[/red]")
        raise typer.Exit(code=2)
    rprint(f"saved {len(data)} bytes to {out}; chain verified: records {check.first}..{check.last}")


@app.command()
def calibrate(ctx: typer.Context, zero: Annotated[int, typer.Option()], ref: Annotated[int, typer.Option()],
              brac: Annotated[int, typer.Option()]) -> None:
    """Two-point calibration (zero counts, reference counts, reference BrAC in thousandths)."""
    _run(ctx, lambda c: tc.call(c, p.Calibrate(zero=zero, ref=ref, brac=brac)))
    rprint("calibrated")


def _day(option: str, text: str) -> int:
    try:
        return tc.date_to_day(text)
    except ValueError as e:
        rprint(f"[red]{option}: {e}[/red]")
        raise typer.Exit(code=1) from None


@app.command()
def module(ctx: typer.Context, serial: Annotated[int, typer.Option()],
           expiry: Annotated[str, typer.Option(help="YYYY-MM-DD")]) -> None:
    """Record a module install or replacement (its expiry date)."""
    day = _day("--expiry", expiry)
    _run(ctx, lambda c: tc.call(c, p.Module(serial=serial, expiry=day)))
    rprint(f"module recorded, expires on {tc.day_to_date(day)}")


@app.command()
def service(ctx: typer.Context, due: Annotated[str | None, typer.Option(help="YYYY-MM-DD")] = None) -> None:
    """Record a service visit (next due date; default: the policy interval)."""
    day = None if due is None else _day("--due", due)
    rsp = _run(ctx, lambda c: tc.call(c, p.Service(due=day)))
    rprint(f"service recorded; next due on {tc.day_to_date(rsp.due)}")


@app.command()
def clear(ctx: typer.Context, lockout_id: Annotated[int, typer.Option()]) -> None:
    """Clear the lockout with this id (as `status` shows it)."""
    _run(ctx, lambda c: tc.call(c, p.Clear(lockout_id=lockout_id)))
    rprint("lockout cleared")


@app.command()
def policy(ctx: typer.Context, values: Annotated[list[str] | None, typer.Argument()] = None) -> None:
    """Show the policy, or change name=value pairs of it (the companion's version stays)."""
    if not values:
        rprint(_run(ctx, lambda c: tc.call(c, p.PolicyRead())).policy)
        return
    try:
        new = {k: int(v) for k, _, v in (pair.partition("=") for pair in values)}
    except ValueError as e:
        rprint(f"[red]bad policy: {e}[/red]")
        raise typer.Exit(code=1) from None
    rsp = _run(ctx, lambda c: tc.call(c, p.PolicyWrite(policy=new)))
    rprint(f"policy version {rsp.policy_version} in force, technician change {rsp.policy_local} on top")


@app.command()
def clock(ctx: typer.Context, wall: Annotated[int | None, typer.Option()] = None) -> None:
    """Set the handset's clock (device seconds; default: this computer's UTC)."""
    target = tc.device_now() if wall is None else wall
    rsp = _run(ctx, lambda c: tc.call(c, p.ClockWrite(wall=target)))
    rprint(f"handset clock set to {rsp.wall}")
