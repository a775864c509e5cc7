"""Cellular sync with the companion: the wire format (shared with the companion) and the handset's client."""
