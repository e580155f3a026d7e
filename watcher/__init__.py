"""The service and the command line: the composition root that wires ``localbackup`` and
``uploader`` together (see docs/architecture.md)."""
