"""ESP32 board: one driver module per chip or board part, built into a Hardware by `wiring.build()`."""
