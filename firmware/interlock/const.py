"""`const` on both interpreters.

MicroPython's compiler folds `NAME = const(value)` while it parses, whatever module `const` came from, and keeps
no global for a name that starts with an underscore. CPython has no `micropython` module: there `const` is the
value itself. This is what lets the package install on CPython without a stand-in on sys.path.
"""

try:
    from micropython import const
except ImportError:

    def const(value):  # type: ignore[no-redef]
        """The value itself."""
        return value
