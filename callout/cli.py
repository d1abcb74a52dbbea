"""The `callout` command. Subcommands load on use, so a client command (cad send, demo) starts quickly."""

from __future__ import annotations

import importlib

import click

COMMANDS = {
    "serve": ("callout.server", "serve", "Migrate the database, then serve."),
    "migrate": ("callout.server", "migrate_command", "Bring the database schema to the newest revision."),
    "db": ("callout.server", "db", "For developers: the schema's migrations."),
    "agency": ("callout.server", "agency", "Agencies: the dispatch centres that post events."),
    "token": ("callout.server", "token", "Bearer tokens for supervisors and admins."),
    "advocate": (
        "callout.advocate",
        "advocate",
        "Advocates' phones: send a test text and call, see what came of them.",
    ),
    "audit": ("callout.data", "audit", "The audit trail: verify its hash chain."),
    "data": ("callout.data", "data", "Personal data at rest: seal it again under a new key."),
    "purge": ("callout.data", "purge_command", "Remove personal data past its retention period (timings stay)."),
    "directory": ("callout.program", "directory", "The directory as one declarative YAML file: import, export."),
    "cad": ("callout.cad", "cad", "For CAD integrators: test your setup."),
    "demo": ("callout.demo", "demo", "Load a demo program, play one DV call end to end, print its timeline."),
    "reply": ("callout.reply", "reply", "Text Callout as an advocate would (accept, decline, progress)."),
    "press": ("callout.reply", "press", "Press a key on a voice alert as an advocate would (1 accepts, 2 declines)."),
}


class LazyGroup(click.Group):
    """Click's documented pattern for lazily loaded subcommands."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module, attribute, _ = COMMANDS[cmd_name]
        command: click.Command = getattr(importlib.import_module(module), attribute)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(name, COMMANDS[name][2]) for name in sorted(COMMANDS)])


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Callout: a DV call posted by CAD reaches the on-call advocate's phone."""
