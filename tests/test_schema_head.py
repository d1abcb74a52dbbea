"""The schema's newest revision as a serving process reads it (without alembic, which it never imports) is
alembic's own; and a serving process does without alembic."""

from __future__ import annotations

import subprocess
import sys

from alembic.script import ScriptDirectory

from shared.db import alembic_config, head_revision


def test_the_head_read_from_the_scripts_is_alembics() -> None:
    assert head_revision() == ScriptDirectory.from_config(alembic_config("postgresql://unused")).get_current_head()


def test_a_process_that_only_serves_holds_no_alembic() -> None:
    """Alembic and the scripts it imports to know the head are ~19 MB: only what migrates imports them."""
    built = (
        "import sys\n"
        "from callout.compose import Part, build\n"
        "from services.alerts.settings import AlertsSettings\n"
        "build(Part.all, AlertsSettings(), 'postgresql://callout@localhost/unused')\n"
        "print(sorted(name for name in sys.modules if name.split('.')[0] == 'alembic'))\n"
    )

    imported = subprocess.run([sys.executable, "-c", built], capture_output=True, text=True, check=True)  # noqa: S603 - our own code

    assert imported.stdout.strip() == "[]", imported.stderr
