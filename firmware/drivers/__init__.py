"""Drivers: one file per chip or board part (`esp32/` for the reference board, `simcom.py`, `flash.py`, ...).

Each implements an interface of the board contract (`board.py`), takes its bus in its constructor and never
creates it; one wiring file per board builds them into a `board.Hardware`.
"""
