"""Error classes shared by every service; the bus routes on them."""


class MarketsenseError(Exception):
    """Base of the project's own errors."""


class NonRetryableError(MarketsenseError):
    """Running the same work again would fail the same way: dead-letter it at once."""


class RetryableError(MarketsenseError):
    """A passing fault (timeout, unavailable dependency): try again after a back-off."""


class ObjectIntegrityError(NonRetryableError):
    """An object's bytes do not match the checksum its reference carries."""


class BadObjectKey(NonRetryableError, ValueError):
    """An object key or URI that would leave the store (absolute, or with '..')."""


class ObjectNotFound(NonRetryableError):
    """A referenced object does not exist."""
