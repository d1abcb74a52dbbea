"""The composition root: the `callout` command assembles the services into processes."""
