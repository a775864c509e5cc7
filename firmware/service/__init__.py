"""The technician service port: an MCUmgr SMP server (serial framing, CBOR, OS/FS/interlock groups)."""
