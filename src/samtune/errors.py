"""Errors a user can cause. The CLI prints them as one line and exits with code 2."""


class UserError(Exception):
    """Bad input from the user: a file, flag, value or configuration.

    The message must name the offending file/value and say what to do about it.
    """


class DataError(UserError):
    """An unreadable or inconsistent data file."""


class CheckpointError(UserError):
    """A missing, corrupt or mismatched checkpoint."""


class ConfigError(UserError):
    """An invalid configuration key or value."""
