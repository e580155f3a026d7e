"""One module per command of ``glacier-backup``: its arguments (``add_parser``) and its run."""
