"""Screens of the awsac TUI: sessions, compose, session (live), log viewer, and modals."""
