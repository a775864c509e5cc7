"""A real SMTP server (aiosmtpd) in this process that keeps what it receives: for tests, the bench and
`make portal`, so the outbox worker talks SMTP to something and the mail can be read back."""

import email
import email.policy
import re
import threading
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller


class _Keep:
    def __init__(self, box: "MailCatcher"):
        self.box = box

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:  # noqa: N802 -- aiosmtpd API
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.box.lock:
            self.box.messages.append(msg)  # type: ignore[arg-type]
        self.box.arrived.set()
        return "250 OK"


class MailCatcher:
    """SMTP on 127.0.0.1:port (a free one by default); `messages` holds every email received."""

    def __init__(self, port: int = 0):
        from companion.testing import free_port

        self.port = port or free_port()
        self.messages: list[EmailMessage] = []
        self.lock = threading.Lock()
        self.arrived = threading.Event()
        self.controller = Controller(_Keep(self), hostname="127.0.0.1", port=self.port)

    def __enter__(self) -> "MailCatcher":
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()

    def to(self, address: str) -> list[EmailMessage]:
        """The emails sent to address, oldest first."""
        with self.lock:
            return [m for m in self.messages if address.lower() in str(m["To"]).lower()]

    @staticmethod
    def text(msg: EmailMessage) -> str:
        """The plain-text part."""
        part = msg.get_body(preferencelist=("plain",))
        return part.get_content() if part is not None else ""  # type: ignore[no-any-return]

    @staticmethod
    def html(msg: EmailMessage) -> str:
        """The HTML part."""
        part = msg.get_body(preferencelist=("html",))
        return part.get_content() if part is not None else ""  # type: ignore[no-any-return]

    def link(self, address: str, path: str) -> str:
        """The last link under path in the mail to address (e.g. '/portal/claim/')."""
        for msg in reversed(self.to(address)):
            found = re.findall(r"https?://[^\s\"<>]+" + re.escape(path) + r"[^\s\"<>]*", self.text(msg))
            if found:
                return found[-1]
        raise AssertionError("no mail to " + address + " with a link to " + path)
