"""Subcommands. Each module: NAME, HELP, EXAMPLES, add_arguments(parser), run(args) -> exit code."""
