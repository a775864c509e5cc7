"""The contract the handset, the companion and the technician tool share, defined once: HMAC, HKDF and code
truncation (crypto), unlock codes (codes), technician tokens (token), the sync wire format (wire), the log record
and its hash chain (record) and device time (timebase).

MicroPython code: it runs on the board as the top-level package `interlock`, beside `fsm`; on CPython it is an
installed package (pyproject's package-dir), so the companion and the technician tool import it from anywhere.
"""
