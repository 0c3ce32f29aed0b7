"""One error family, mapped to one line on stderr and an exit code at the edge (cli.main)."""

EXIT_OK = 0
EXIT_FAILURE = 1  # the work itself failed (a training run crashed, a measurement could not be taken)
EXIT_USAGE = 2  # the user's input was wrong: unknown names, impossible values, malformed files
EXIT_INTERRUPTED = 130


class AdvisorError(Exception):
    """An error the user can fix; its message is shown as one line."""

    exit_code = EXIT_USAGE


class RunFailed(AdvisorError):
    """Work that was started and failed (not the user's input)."""

    exit_code = EXIT_FAILURE
