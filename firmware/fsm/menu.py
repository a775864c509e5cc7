"""The idle menu: LEFT / RIGHT page through the driver's information, OK closes it."""

from micropython import const

from board import LEFT, OK, RIGHT

PAGES = const(5)
FIRMWARE = b"FW 0.1.0"
FIRMWARE_VERSION = const(100)  # 0.1.0, as logged in BOOT records


class Menu:
    """Which page is shown."""

    def __init__(self):
        self.page = 0

    def press(self, buttons):
        """Apply buttons; returns False when the menu closes."""
        if buttons & OK:
            return False
        if buttons & RIGHT:
            self.page = (self.page + 1) % PAGES
        if buttons & LEFT:
            self.page = (self.page + PAGES - 1) % PAGES
        return True

    def render(self, screen, fsm):
        """Draw the current page from the state machine's fields."""
        page = self.page
        if page == 0:
            screen.text(0, 0, b"NEXT PAYMENT")
            _date_or(screen, fsm.payment_due, b"NONE")
        elif page == 1:
            screen.text(0, 0, b"MODULE EXPIRES")
            _date_or(screen, fsm.module_expiry, b"NO MODULE")
        elif page == 2:
            screen.text(0, 0, b"NEXT SERVICE")
            due = fsm.service_due
            if fsm.inspection_due and (not due or fsm.inspection_due < due):
                due = fsm.inspection_due
            _date_or(screen, due, b"NONE")
        elif page == 3:
            col = screen.text(0, 0, b"SN ")
            screen.number(0, col, fsm.device_id, 8)
            screen.text(1, 0, FIRMWARE)
        else:
            screen.text(0, 0, b"LAST SYNC")
            _date_or(screen, fsm.last_sync // 86400 if fsm.last_sync else 0, b"NEVER")


def _date_or(screen, day, fallback):
    if day:
        screen.date(1, 0, day)
    else:
        screen.text(1, 0, fallback)
