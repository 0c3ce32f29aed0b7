"""The estimator's one error type: a message a user can act on, shown as one line by the CLI."""


class EstimateError(ValueError):
    """Bad input to the estimator (unknown name, impossible value, malformed config)."""
