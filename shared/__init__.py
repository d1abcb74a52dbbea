"""Infrastructure common to every Callout service; imports no service."""
