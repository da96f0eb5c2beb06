"""User-facing errors: one line that says what is wrong and what to do."""


class EvalsuiteError(Exception):
    """Bad input or an unusable setting. The CLI prints `error: <message>` and exits with code 2."""

    exit_code = 2


class BackendError(EvalsuiteError):
    """A backend cannot be built or loaded here (missing weights, no CUDA, missing package)."""
