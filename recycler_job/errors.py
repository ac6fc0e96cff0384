"""The root of the package's exceptions.

Every error the package raises on purpose derives from `RecyclerError`, so a caller (or a test)
can tell "the program refused or failed in a known way" from a bug with one `except`.
"""


class RecyclerError(Exception):
    """A failure the program knows about; the message is meant for an admin."""
