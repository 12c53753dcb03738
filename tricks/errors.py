"""The project's one user-facing error type.

Anything a user can cause (a bad flag, a bad spec, a missing data folder) is raised as a
``TricksError``; the CLI prints its message on one line and exits with code 2, no traceback.
Anything else escaping is a bug in this project, and keeps its traceback.
"""


class TricksError(Exception):
    """A problem with the user's input or environment, with a message that says the fix."""


class SpecError(TricksError):
    """A spec file or a trick's parameters are invalid."""


class DataError(TricksError):
    """A dataset is missing, malformed or fails its checksum."""


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived: handled like Ctrl-C (finished runs kept), but exits with 143 (128 + SIGTERM)."""
