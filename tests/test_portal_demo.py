"""`make portal` starts the companion with the demo driver and a syncing simulated handset, and prints the URL
and the sign-in; the sign-in it prints opens a dashboard showing the handset's lockout."""

import os
import re
import subprocess
import sys
import time

import httpx

from companion import testing
from tests.portal_client import csrf_of


def test_portal_demo_prints_a_working_sign_in():
    """The printed URL and driver sign-in work; the handset has synced (its lockout is on the card)."""
    port = testing.free_port()
    env = dict(os.environ, PYTHONPATH=str(testing.ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "host_sim.portal_demo", "--port", str(port)], env=env,
                            cwd=str(testing.ROOT), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines = []
        deadline = time.monotonic() + 120
        while not any("staff:" in line for line in lines):
            line = proc.stdout.readline()
            assert line or proc.poll() is None, "".join(lines)
            lines.append(line)
            assert time.monotonic() < deadline, "".join(lines)
        text = "".join(lines)
        url = re.search(r"Client portal: (\S+)", text).group(1)
        email, password = re.search(r"driver: (\S+)\s+password: (\S+)", text).groups()
        assert url == "http://127.0.0.1:%d/portal/" % port
        with httpx.Client(base_url=url.rsplit("/portal/", 1)[0], timeout=30) as c:
            page = c.get("/portal/sign-in")
            r = c.post("/portal/sign-in", data={"identity": email, "password": password,
                                                "csrf": csrf_of(page.text)})
            assert r.status_code == 303
            dash = c.get("/portal/dashboard").text
            assert "Locked out after a violation" in dash and "Portable monitor" in dash
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        proc.stdout.close()
