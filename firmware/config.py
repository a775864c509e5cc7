"""Installation settings of one handset, written to its flash when it is installed in a vehicle."""

# The companion service the handset syncs with, reached through the cellular modem's HTTP stack.
COMPANION_URL = "http://companion.local"
# The name the handset advertises its BLE service port under (the technician's `--ble NAME`).
BLE_NAME = "interlock"
