"""How `make test` finds the browser tests' Chromium (tests/browser.py), run as `make test` runs it, on a PATH with no
Chromium on it: CALLOUT_CHROMIUM first, then Playwright's own; with none, one line saying what to install."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.browser import ENV, ON_PATH, WHAT_TO_INSTALL, chromium_to_drive
from tests.processes import free_port

ROOT = Path(__file__).parent.parent
# Left off the PATH as well as every Chromium: with apt-get (and root) the finder would install Debian's package.
INSTALLERS = ("apt-get", "sudo")


@pytest.fixture(scope="module")
def no_chromium_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A PATH with all this one has (a Chromium's wrapper script needs its tools) but any Chromium or installer."""
    folder = tmp_path_factory.mktemp("path")
    for directory in os.environ["PATH"].split(os.pathsep):
        if not os.path.isdir(directory):
            continue
        for name in os.listdir(directory):
            program = os.path.join(directory, name)
            if name in ON_PATH or name in INSTALLERS or (folder / name).exists() or not os.access(program, os.X_OK):
                continue
            (folder / name).symlink_to(program)
    return str(folder)


@pytest.fixture(scope="module")
def real_chromium() -> str:
    """The Chromium this machine's tests drive (make hands it over as CALLOUT_CHROMIUM)."""
    return chromium_to_drive(playwrights_own(None)).executable


def playwrights_own(browsers: str | None) -> str:
    """Where Playwright keeps its own Chromium when its browsers are kept in `browsers` (None: where it keeps
    them by default)."""
    ask = (
        "from playwright.sync_api import sync_playwright\n"
        "with sync_playwright() as playwright: print(playwright.chromium.executable_path)"
    )
    env = dict(os.environ) | ({"PLAYWRIGHT_BROWSERS_PATH": browsers} if browsers is not None else {})
    done = subprocess.run([sys.executable, "-c", ask], env=env, capture_output=True, text=True, check=True)  # noqa: S603
    return done.stdout.strip()


def find(path: str, browsers: Path, **environment: str) -> subprocess.CompletedProcess[str]:
    """`python -m tests.browser` as `make test` runs it; Playwright's downloads from a port where nothing listens."""
    unset = {ENV, "PLAYWRIGHT_BROWSERS_PATH", "PLAYWRIGHT_DOWNLOAD_HOST"}
    env = {k: v for k, v in os.environ.items() if k not in unset} | {
        "PATH": path,
        "PLAYWRIGHT_BROWSERS_PATH": str(browsers),
        "PLAYWRIGHT_DOWNLOAD_HOST": f"http://127.0.0.1:{free_port()}",
        **environment,
    }
    return subprocess.run(
        [sys.executable, "-m", "tests.browser"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )


def test_callout_chromium_is_the_one_driven(no_chromium_path: str, real_chromium: str, tmp_path: Path) -> None:
    found = find(no_chromium_path, tmp_path, CALLOUT_CHROMIUM=real_chromium)

    assert found.returncode == 0, found.stderr
    assert found.stdout == f"{real_chromium}\n"
    assert found.stderr == f"Browser tests drive CALLOUT_CHROMIUM: {real_chromium}\n"


def test_a_callout_chromium_that_does_not_start_is_said_so_in_one_line_and_nothing_else_is_tried(
    no_chromium_path: str, real_chromium: str, tmp_path: Path
) -> None:
    (tmp_path / "chromium").symlink_to(real_chromium)  # on the PATH, but not the one asked for
    wrong = tmp_path / "not-a-browser"
    wrong.write_text("#!/bin/sh\nexit 3\n")
    wrong.chmod(0o755)

    found = find(f"{tmp_path}{os.pathsep}{no_chromium_path}", tmp_path / "browsers", CALLOUT_CHROMIUM=str(wrong))

    assert found.returncode == 1
    assert found.stdout == ""
    [line] = found.stderr.splitlines()
    assert line.startswith(f"CALLOUT_CHROMIUM={wrong} does not start (")
    assert line.endswith("): point it at a Chromium or Chrome, or unset it")
    assert not (tmp_path / "browsers").exists()  # no download was tried


def test_with_nothing_on_the_path_playwrights_own_is_driven(
    no_chromium_path: str, real_chromium: str, tmp_path: Path
) -> None:
    own = Path(playwrights_own(str(tmp_path)))
    own.parent.mkdir(parents=True)
    own.symlink_to(real_chromium)  # as `playwright install chromium` would have put one there

    found = find(no_chromium_path, tmp_path)

    assert found.returncode == 0, found.stderr
    assert found.stdout == f"{own}\n"
    assert found.stderr == f"Browser tests drive Playwright's own: {own}\n"


def test_with_no_chromium_to_be_had_it_stops_at_once_with_one_line_saying_what_to_install(
    no_chromium_path: str, tmp_path: Path
) -> None:
    started = time.monotonic()
    found = find(no_chromium_path, tmp_path)
    took = time.monotonic() - started

    assert found.returncode == 1
    assert found.stdout == ""
    assert found.stderr == f"{WHAT_TO_INSTALL} (Playwright's download failed; no apt-get here)\n"
    assert took < 60  # Playwright's download gave up at once on a host that does not answer
