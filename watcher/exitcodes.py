"""Exit codes promised to users and scripts."""

OK = 0
FAILURE = 1
USAGE = 2  # usage or configuration error
WARNINGS = 3  # completed with warnings
