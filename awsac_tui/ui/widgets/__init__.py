"""Widgets of the awsac TUI: keyed live tables, the job timeline, status bars."""
