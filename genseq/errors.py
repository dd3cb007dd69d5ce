"""Errors a user can cause. The CLI prints them on one line and exits with status 2."""


class GenseqError(Exception):
    """A problem with the user's input, configuration or files; the message names the fix."""


class ConfigError(GenseqError):
    """A setting is out of range or contradicts another."""


class InputError(GenseqError):
    """A source file, corpus, primer or other input cannot be used."""


class CheckpointError(GenseqError):
    """A checkpoint file is missing, corrupt, unsafe or of an unknown format version."""


def one_line(message: object) -> str:
    """A message (or an exception's) on one short line, for errors that wrap third-party ones."""
    return " ".join(str(message).split())[:160] or type(message).__name__
