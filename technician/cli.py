"""`python -m technician`: the service technician's command line for the interlock handset.

Each command connects (serial, BLE or UDP), logs in with the companion-issued token, does its one job,
logs out and disconnects. Example:

    python -m technician --port /dev/ttyUSB0 --token tech.json log --out events.bin
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn
from smpclient import SMPClient

from technician import client as tc
from technician import protocol as p
from technician.token import Token

app = typer.Typer(help="Service technician tools for the interlock handset (MCUmgr SMP service port).",
                  no_args_is_help=True, add_completion=False)
console = Console()


@dataclass
class Conn:
    """How to reach the handset, and with which token."""

    port: str | None
    ble: str | None
    udp: str | None
    token: Path | None
    timeout: float
    baudrate: int


def _fail(msg: str) -> typer.Exit:
    console.print(f"[red]error:[/red] {escape(msg)}", soft_wrap=True)  # one line, whatever the width
    return typer.Exit(code=1)


@app.callback()
def options(
    ctx: typer.Context,
    port: Annotated[str | None, typer.Option(help="Serial port, e.g. /dev/ttyUSB0")] = None,
    ble: Annotated[str | None, typer.Option(help="BLE address of the handset")] = None,
    udp: Annotated[str | None, typer.Option(help="IP address of the handset, HOST or HOST:PORT (UDP, port "
                                               "1337 unless given)")] = None,
    token: Annotated[Path | None, typer.Option(help="Technician token JSON from the companion")] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for each answer")] = 2.5,
    baudrate: Annotated[int, typer.Option(help="Serial line rate")] = 115200,
) -> None:
    """Connection and token options shared by every command."""
    ctx.obj = Conn(port, ble, udp, token, timeout, baudrate)


def session(ctx: typer.Context, job: Callable[[SMPClient], Awaitable[Any]], needs_login: bool = True) -> Any:
    """Connect, log in, run job, log out, disconnect; errors become a message and exit code 1."""
    conn: Conn = ctx.obj
    tok: Token | None = None
    if needs_login:
        if conn.token is None:
            raise _fail("--token is required (the companion issues one per handset and technician)")
        try:
            tok = Token.load(conn.token)
        except (OSError, ValueError) as e:
            raise _fail(str(e)) from None
    tc.quiet_transport_logs()
    try:
        smp = tc.make_client(conn.port, conn.ble, conn.udp, conn.timeout, conn.baudrate)
    except tc.ServiceError as e:
        raise _fail(str(e)) from None
    where = conn.port or conn.ble or conn.udp or ""

    async def go() -> Any:
        await tc.connect(smp, where)
        logged_in = False
        try:
            if tok is not None:
                who = await tc.login(smp, tok)
                logged_in = True
                console.print(f"logged in as technician {who.tech_id}")
            return await job(smp)
        except tc.NoAnswer:
            logged_in = False  # nobody to log out from
            raise
        finally:
            try:
                if logged_in:
                    # after a refused command too: the session must not outlive the command
                    await tc.call(smp, p.Logout())
            except tc.ServiceError:
                pass
            finally:
                await smp.disconnect()

    try:
        return asyncio.run(go())
    except (tc.ServiceError, TimeoutError, OSError) as e:
        raise _fail(str(e) or type(e).__name__) from None


# status fields that hold a device day or device seconds (0 = none), shown as dates
_DAY_FIELDS = ("payment_due", "service_due", "inspection_due", "module_expiry")
_WALL_FIELDS = ("wall", "recall_deadline", "temp_lock_until")


def show_value(key: str, value: Any) -> str:
    """A status value as a technician reads it: dates as dates, times as UTC times."""
    if isinstance(value, int) and not isinstance(value, bool):
        if key in _DAY_FIELDS:
            return str(tc.day_to_date(value)) if value else "-"
        if key in _WALL_FIELDS:
            return tc.wall_to_text(value) if value else "-"
    return str(value)


def _date(option: str, text: str) -> int:
    try:
        return tc.date_to_day(text)
    except ValueError as e:
        raise _fail(f"{option}: {e}") from None


@app.command()
def status(ctx: typer.Context) -> None:
    """Show the handset's state."""
    st = session(ctx, lambda c: tc.call(c, p.Status()))
    for key in sorted(st.status):
        console.print(f"{key:>18}  {show_value(key, st.status[key])}")


@app.command()
def log(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option(help="Where to save the downloaded log")] = Path("events.bin"),
) -> None:
    """Download the event log with a progress bar and verify its hash chain."""
    with Progress(TextColumn("log"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                  console=console, transient=False) as bar:
        task = bar.add_task("download", total=None)

        def tick(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        data = session(ctx, lambda c: tc.download(c, tc.LOG_FILE, tick))
    out.write_bytes(data)
    check = tc.check_log(data)
    if not check.ok:
        console.print(f"[red]chain check FAILED[/red] at record index {check.bad_index}: {check.reason}")
        raise typer.Exit(code=2)
    console.print(f"saved {len(data)} bytes to {out}; chain verified: records {check.first}..{check.last} "
                  f"({check.count} records)")


@app.command()
def calibrate(
    ctx: typer.Context,
    zero: Annotated[int, typer.Option(help="Fuel-cell counts with clean air")],
    ref: Annotated[int, typer.Option(help="Fuel-cell counts with the reference gas")],
    brac: Annotated[int, typer.Option(help="Reference gas BrAC, thousandths of g/dL (e.g. 80)")],
) -> None:
    """Two-point calibration of the fuel cell."""
    session(ctx, lambda c: tc.call(c, p.Calibrate(zero=zero, ref=ref, brac=brac)))
    console.print(f"calibrated: zero {zero}, reference {ref} at {brac}")


@app.command()
def module(
    ctx: typer.Context,
    serial: Annotated[int, typer.Option(help="Module serial number")],
    expiry: Annotated[str, typer.Option(help="Module expiry date, YYYY-MM-DD")],
) -> None:
    """Record a sensor module install or replacement."""
    day = _date("--expiry", expiry)
    session(ctx, lambda c: tc.call(c, p.Module(serial=serial, expiry=day)))
    console.print(f"module {serial} recorded, expires on {tc.day_to_date(day)}")


@app.command()
def service(
    ctx: typer.Context,
    due: Annotated[str | None, typer.Option(help="Next service date, YYYY-MM-DD; default: the policy "
                                                "interval")] = None,
) -> None:
    """Record a service visit (restarts the service interval)."""
    day = None if due is None else _date("--due", due)
    rsp = session(ctx, lambda c: tc.call(c, p.Service(due=day)))
    console.print(f"service recorded; next due on {tc.day_to_date(rsp.due)}")


@app.command()
def clear(
    ctx: typer.Context,
    lockout_id: Annotated[int, typer.Option(help="Id of the lockout to clear, as `status` shows it (0 for a "
                                                 "state lock without a violation lockout)")],
) -> None:
    """Clear the lockout the handset shows (a breath test is still required afterwards)."""
    session(ctx, lambda c: tc.call(c, p.Clear(lockout_id=lockout_id)))
    console.print("lockout cleared")


@app.command()
def policy(
    ctx: typer.Context,
    values: Annotated[list[str] | None, typer.Argument(help="name=value pairs")] = None,
    file: Annotated[Path | None, typer.Option(help="JSON map of name -> int")] = None,
) -> None:
    """Show the policy, or change numbers of it (all or nothing). The companion's version stays; the handset
    counts the change as a technician's, and the companion's next policy applies over it."""
    new: dict[str, int] = {}
    try:
        if file is not None:
            new.update({str(k): int(v) for k, v in json.loads(file.read_text()).items()})
        for pair in values or []:
            name, _, value = pair.partition("=")
            new[name] = int(value)
    except (OSError, ValueError, AttributeError) as e:
        raise _fail(f"bad policy: {e}") from None
    if not new:
        rsp = session(ctx, lambda c: tc.call(c, p.PolicyRead()))
        for key in sorted(rsp.policy):
            console.print(f"{key:>22}  {rsp.policy[key]}")
        return
    rsp = session(ctx, lambda c: tc.call(c, p.PolicyWrite(policy=new)))
    console.print(f"policy version {rsp.policy_version} in force, technician change {rsp.policy_local} on top")


@app.command()
def clock(
    ctx: typer.Context,
    at: Annotated[str | None, typer.Option(help="Date and time to set, YYYY-MM-DDTHH:MM:SS (UTC unless it "
                                              "has an offset); default: this computer's clock")] = None,
    wall: Annotated[int | None, typer.Option(help="Or device seconds since 2024-01-01T00:00Z")] = None,
    show: Annotated[bool, typer.Option("--show", help="Only show the handset's clock")] = False,
) -> None:
    """Set (or show) the handset's clock."""
    if show:
        rsp = session(ctx, lambda c: tc.call(c, p.ClockRead()))
        console.print(f"handset clock: {tc.wall_to_text(rsp.wall)}")
        return
    if at is not None and wall is not None:
        raise _fail("give --at or --wall, not both")
    target = tc.device_now() if wall is None else wall
    if at is not None:
        try:
            target = tc.text_to_wall(at)
        except ValueError as e:
            raise _fail(f"--at: {e}") from None
    rsp = session(ctx, lambda c: tc.call(c, p.ClockWrite(wall=target)))
    console.print(f"handset clock set to {tc.wall_to_text(rsp.wall)}")


@app.command()
def provision(
    ctx: typer.Context,
    device_id: Annotated[int, typer.Option(help="Device id the companion assigned")],
    secret: Annotated[str, typer.Option(help="The handset secret from the companion, 64 hex digits")],
) -> None:
    """Give a new (unprovisioned) handset its id and secret; refused once it has one."""
    try:
        raw = bytes.fromhex(secret)
    except ValueError:
        raise _fail("--secret must be hex") from None
    if len(raw) != 32:
        raise _fail("--secret must be 32 bytes (64 hex digits)")
    rsp = session(ctx, lambda c: tc.call(c, p.Provision(device_id=device_id, secret=raw)), needs_login=False)
    console.print(f"handset provisioned as device {rsp.device_id}")


def main() -> None:
    """Console entry point."""
    app()
