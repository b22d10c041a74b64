"""Exceptions of the library. The CLI maps them to exit codes (SPEC section 2)."""


class MbgError(Exception):
    """A failure while doing the work: exit 1, nothing half-written."""

    exit_code = 1


class InputError(MbgError):
    """Bad input found before any change (a date, a path, a setting): exit 2."""

    exit_code = 2


class NotOurFileError(InputError):
    """The file is not an mbg database of the expected kind."""


class SchemaTooNewError(InputError):
    """The file was written by a newer mbg: we do not know its schema."""


class RootMissingError(InputError):
    """The MBGROOT tree does not exist yet."""


class SettingsError(InputError):
    """etc/mbg.toml has an unknown key or a bad value."""


class DatasetLockedError(MbgError):
    """Another process held the database longer than the busy timeout."""
