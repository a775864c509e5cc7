"""Documents and notes over HTTP: PDF, JPEG and PNG by content, an executable named .png refused, a 1 GB
upload refused before its body is read (nothing written), path-like names never reach the disk, download,
delete by staff only, notes to the authority. Both backends."""

import os
import socket
import struct
import zlib

import pytest
from sqlalchemy import func, select

from companion import testing
from tests.portal_client import csrf_of
from tests.service_support import authority_for

pytest_plugins = ["tests.portal_support"]


@pytest.fixture(scope="module")
def docs_dir(tmp_path_factory):
    """Where the module's server keeps documents."""
    return tmp_path_factory.mktemp("docs")


@pytest.fixture(scope="module")
def portal_server(portal_backend, mail, docs_dir):
    """The portal with documents under a temporary directory and a 64 kB document limit."""
    from tests.portal_support import fast_portal_settings

    port = testing.free_port()
    ps = fast_portal_settings(mail.port, "http://127.0.0.1:%d" % port, DOCUMENTS_DIR=str(docs_dir),
                              DOCUMENT_MAX_BYTES=65536)
    with testing.ServerThread(portal_backend, port=port, portal_settings=ps) as srv:
        yield srv


def png_bytes(w=2, h=2):
    """A real, minimal PNG."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    raw = b"".join(b"\x00" + b"\xff\x00\x00" * w for _ in range(h))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def pdf_bytes():
    """A real PDF (fpdf2)."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", size=12)
    pdf.cell(0, 10, "Court order 123")
    return bytes(pdf.output())


def _count(world):
    from companion.app.service.models import Document

    with world.session() as s:
        return s.scalar(select(func.count()).select_from(Document))


def _upload(c, name, data, mime="application/octet-stream"):
    page = c.get("/portal/documents").text
    return c.post("/portal/documents", data={"csrf": csrf_of(page)}, files={"file": (name, data, mime)})


def test_upload_list_download_and_staff_only_delete(world, docs_dir):
    """A PNG and a PDF upload, list and download as they were; the driver cannot delete, staff can."""
    d = world.driver()
    with world.browser(d["email"]) as c:
        assert _upload(c, "photo.png", png_bytes(), "image/png").status_code == 303
        assert _upload(c, "order.pdf", pdf_bytes(), "application/pdf").status_code == 303
        page = c.get("/portal/documents").text
        ids = [int(x) for x in __import__("re").findall(r'href="/portal/documents/(\d+)"', page)]
        assert len(ids) == 2 and "photo.png" in page and "order.pdf" in page
        got = c.get("/portal/documents/%d" % ids[1])
        assert got.content == png_bytes() and got.headers["content-type"] == "image/png"
        assert 'filename="document-%d.png"' % ids[1] in got.headers["content-disposition"]
        r = c.post("/portal/documents/%d/delete" % ids[1], data={"csrf": csrf_of(page)})
        assert r.status_code == 404
    _sid, staff_email = world.staff()
    with world.browser(staff_email) as c:
        page = c.get("/portal/documents", params={"account_id": d["account_id"]}).text
        assert "photo.png" in page
        r = c.post("/portal/documents/%d/delete" % ids[1], data={"csrf": csrf_of(page)})
        assert r.status_code == 303
    with world.browser(d["email"]) as c:
        assert c.get("/portal/documents/%d" % ids[1]).status_code == 404
        assert "photo.png" not in c.get("/portal/documents").text


@pytest.mark.parametrize("name,data", [
    ("photo.png", b"MZ\x90\x00" + b"\x00" * 200),  # a Windows executable named .png
    ("photo.png", b"\x7fELF\x02\x01\x01" + b"\x00" * 200),
    ("doc.pdf", b"%PDF-1.7 but cut short"),  # no end marker
    ("x.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 40),  # a PNG signature and nothing of a PNG
    ("empty.pdf", b""),
])
def test_files_that_are_not_what_they_say_are_refused_and_nothing_is_kept(world, docs_dir, name, data):
    """The type comes from the content: anything else is refused, no row, no file."""
    d = world.driver()
    before, files = _count(world), set(os.listdir(docs_dir))
    with world.browser(d["email"]) as c:
        r = _upload(c, name, data, "image/png")
    assert r.status_code in (415, 422) and 'class="error"' in r.text
    assert _count(world) == before and set(os.listdir(docs_dir)) == files


def test_path_like_names_never_become_paths(world, docs_dir):
    """A file called ../../etc/passwd.png is stored under a random name inside the directory; its title is
    only the last part."""
    d = world.driver()
    with world.browser(d["email"]) as c:
        assert _upload(c, "../../../etc/passwd.png", png_bytes(), "image/png").status_code == 303
        assert _upload(c, "..\\..\\win.ini.png", png_bytes(3, 3), "image/png").status_code == 303
        page = c.get("/portal/documents").text
    assert "passwd.png" in page and "../" not in page and "win.ini.png" in page
    from companion.app.service.models import Document

    with world.session() as s:
        names = [x.stored_name for x in s.scalars(select(Document).where(Document.account_id == d["account_id"]))]
    assert all(__import__("re").fullmatch(r"[0-9a-f]{32}\.png", n) for n in names)
    assert set(names) <= set(os.listdir(docs_dir))


def test_a_1_gb_upload_is_refused_before_its_body_is_read(world, portal_server, docs_dir):
    """Content-Length of 1 GB: 413 at once, the connection closed, nothing written (only headers are sent)."""
    d = world.driver()
    before, files = _count(world), set(os.listdir(docs_dir))
    with world.browser(d["email"]) as c:
        cookie = "; ".join("%s=%s" % (k, v) for k, v in c.cookies.items())
    host, port = portal_server.url.replace("http://", "").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(("POST /portal/documents HTTP/1.1\r\nHost: x\r\nCookie: %s\r\n"
                      "Content-Type: multipart/form-data; boundary=b\r\nContent-Length: %d\r\n\r\n"
                      % (cookie, 1 << 30)).encode())
        answer = sock.recv(4096).decode()
    assert answer.startswith("HTTP/1.1 413")
    assert _count(world) == before and set(os.listdir(docs_dir)) == files
    # past the configured limit but small enough to send: refused too
    with world.browser(d["email"]) as c:
        r = _upload(c, "big.png", png_bytes() + b"\x00" * 70000, "image/png")
    assert r.status_code == 413
    assert _count(world) == before


def test_notes_reach_the_assigned_authority(world):
    """A driver's note shows on the authority's page of that driver."""
    d = world.driver()
    with world.browser(d["email"]) as c:
        page = c.get("/portal/documents").text
        r = c.post("/portal/notes", data={"body": "I moved to Tucson", "csrf": csrf_of(page)})
        assert r.status_code == 303
        assert c.post("/portal/notes", data={"body": "", "csrf": csrf_of(page)}).status_code == 422
    email = authority_for(world, d["account_id"])
    with world.browser(email) as c:
        assert "I moved to Tucson" in c.get("/portal/authority/drivers/%d" % d["account_id"]).text


def test_the_api_uploads_and_refuses_like_the_pages(world, docs_dir):
    """Multipart upload over the JSON API: a PDF is kept and listed; an executable is 415; nothing kept for it."""
    import httpx

    d = world.driver()
    token = world.api_token(d["email"])["access_token"]
    pdf = pdf_bytes()
    with httpx.Client(base_url=world.server.url, headers={"authorization": "Bearer " + token}) as c:
        r = c.post("/api/v1/portal/documents", files={"file": ("order.pdf", pdf, "application/pdf")})
        assert r.status_code == 201 and r.json()["kind"] == "pdf"
        before = _count(world)
        bad = c.post("/api/v1/portal/documents", files={"file": ("x.png", b"MZ" + b"\x00" * 100, "image/png")})
        assert bad.status_code == 415 and bad.json()["type"].endswith("bad-file-type")
        assert _count(world) == before
        listed = c.get("/api/v1/portal/documents").json()
        assert [x["title"] for x in listed] == ["order.pdf"]
        assert c.get("/api/v1/portal/documents/%d" % listed[0]["id"]).content == pdf
