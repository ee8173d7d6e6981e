"""SimpleDB completed for the local cloud (placeholder)."""


def install() -> None:
    """Patch moto's SimpleDB."""
