"""Test tooling shared by the tests and the `pbj chaos` command; no service imports it."""
