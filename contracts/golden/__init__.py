"""Golden CloudEvents: one realistic record per published event version (make_golden.py)."""
