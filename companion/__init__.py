"""The companion service: handset registry, sync API, accounts, payments, unlock codes, technician tokens."""
