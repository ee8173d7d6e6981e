"""awsac_tui: the awsac client (Textual TUI and headless verbs)."""

__version__ = "0.1.0"
