"""Emulators of cloud services for the tests: they share no code with the clients they check."""
