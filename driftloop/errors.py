"""Errors meant for people: one line naming what is wrong and where."""


class DriftloopError(Exception):
    """A problem the user can fix; the CLI prints it as one line and exits 1."""


class ConfigError(DriftloopError):
    """conf/ or params.yaml is wrong."""


class DataError(DriftloopError):
    """The input data is missing, empty or does not match the schema."""
