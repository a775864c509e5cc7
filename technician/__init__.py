"""Technician tools for the interlock handset's service port: SMP messages, a client session, a CLI.

`python -m technician --port /dev/ttyUSB0 --token token.json status` (or `--ble ADDR`, `--udp HOST`);
`smpmgr --plugin-path=technician/smpmgr_plugin --port ... interlock status` offers the same commands.
"""
