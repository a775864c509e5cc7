"""CPython stand-in for MicroPython's `micropython` module, placed ahead of the real one on sys.path."""


def const(value):
    """Identity: on MicroPython `const` folds the value into the bytecode."""
    return value


def native(func):
    """Identity: the native emitter does not exist on CPython."""
    return func


viper = native


def alloc_emergency_exception_buf(size):
    """No-op on CPython."""


def mem_info(*args):
    """No-op on CPython."""


def kbd_intr(chr):
    """No-op on CPython (MicroPython: the byte on the REPL stream that raises KeyboardInterrupt; -1 for none)."""
