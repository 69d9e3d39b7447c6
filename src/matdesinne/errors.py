"""Exceptions the command line turns into a one-line message and exit code 2."""


class UserInputError(ValueError):
    """Something the user supplied is wrong: a file, a column, a value, a checkpoint.

    The message must read as a complete sentence for the person at the terminal; the
    command line prints it as ``matdesinne: error: <message>`` with no traceback.

    Messages name a function's arguments as ``name=`` (``out=results.csv``, ``force=True``),
    so they read right to a Python user; the command line rewrites each such mention as
    its own flag (``--out results.csv``, ``--force``).
    """
