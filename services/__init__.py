"""Callout's deployable services: intake, directory and alerts."""
