"""Typed errors raised where bad input enters the package."""

from huggingface_hub.errors import StrictDataclassFieldValidationError


class OneVisionInputError(ValueError):
    """An argument, tensor or file that the package cannot use; the message names the problem."""


class OneVisionVideoError(OneVisionInputError):
    """A video file that cannot be decoded (corrupt, truncated, empty, audio-only, not a video)."""


class OneVisionConfigError(OneVisionInputError):
    """A configuration whose values cannot describe a valid model."""


class AttentionBackendUnavailableError(ImportError):
    """The requested attention implementation cannot run on this machine."""


class OneVisionConfigFieldError(OneVisionConfigError, StrictDataclassFieldValidationError):
    """A config field of the wrong type (``"false"`` for a bool, ``2.5`` for an int): a `OneVisionConfigError` that
    is also huggingface_hub's strict-dataclass field error, so either ``except`` catches it."""

    def __init__(self, field: str, cause: Exception):
        StrictDataclassFieldValidationError.__init__(self, field, cause)


def typed_field_errors(config_class):
    """Class decorator over ``@strict``: its field validation errors are raised as `OneVisionConfigFieldError`."""
    strict_setattr = config_class.__setattr__

    def __setattr__(self, name, value):
        try:
            strict_setattr(self, name, value)
        except StrictDataclassFieldValidationError as error:
            if isinstance(error, OneVisionConfigError):
                raise
            raise OneVisionConfigFieldError(name, error.__cause__ or error) from error.__cause__

    config_class.__setattr__ = __setattr__
    return config_class
