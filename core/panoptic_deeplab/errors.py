"""Errors caused by input a user can fix. The CLI and the app show their message without a
traceback; the message names the file or field and says how to fix it."""


class UserError(Exception):
    """Bad input (file, data set, config, checkpoint) that the user can fix."""


class ConfigError(UserError, ValueError):
    """A config file or override is invalid."""


class DatasetError(UserError):
    """A data set on disk is missing files or has inconsistent annotations."""


class ImageError(UserError):
    """An image file cannot be used (corrupt, empty, too large, unsupported)."""


class CheckpointError(UserError):
    """A checkpoint or model bundle does not match what is asked of it."""
