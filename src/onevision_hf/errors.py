"""Typed errors raised where bad input enters the package."""


class OneVisionInputError(ValueError):
    """An argument, tensor or file that the package cannot use; the message names the problem."""


class OneVisionVideoError(OneVisionInputError):
    """A video file that cannot be decoded (corrupt, truncated, empty, audio-only, not a video)."""


class OneVisionConfigError(OneVisionInputError):
    """A configuration whose values cannot describe a valid model."""


class AttentionBackendUnavailableError(ImportError):
    """The requested attention implementation cannot run on this machine."""
