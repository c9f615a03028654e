"""Errors that reach the user as one line (the CLI prints them without a traceback)."""


class DataError(ValueError):
    """Bad input data: names the file, the line when there is one, and what is wrong."""
