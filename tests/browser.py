"""The Chromium the browser tests drive, found in one place.

`make test` runs this first (`python -m tests.browser`): it prints the Chromium to drive, after making sure that
Playwright can start it, installing one where it can — or says in one line what to install, and fails. The
`browser` fixture (tests/conftest.py) asks the same, in the same order, without installing anything:

1. `CALLOUT_CHROMIUM`, when set: the one asked for, and no other;
2. a Chromium or Chrome on the PATH (`chromium`, `chromium-browser`, `google-chrome`, `google-chrome-stable`);
3. Playwright's own, if it was downloaded (`playwright install chromium`).

With none that starts, `make test` tries Playwright's download, then Debian's package (`apt-get install chromium`,
as root or with passwordless sudo), then gives up saying what to install."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass

from playwright.sync_api import Error, Playwright, sync_playwright

ENV = "CALLOUT_CHROMIUM"
ON_PATH = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
DEBIANS = "/usr/bin/chromium"  # where Debian's package puts it, whatever the PATH
WHAT_TO_INSTALL = (
    "No Chromium for the browser tests: install Debian's (apt-get install chromium) or Playwright's "
    "(.venv/bin/playwright install chromium), or set CALLOUT_CHROMIUM to a Chromium or Chrome binary"
)
# Playwright's download: a host that cannot be reached fails at once, not after the default of 30 s a try.
CONNECTION_TIMEOUT_MS = "10000"
DOWNLOAD_SECONDS = 180
APT_SECONDS = 900
LAUNCH_TIMEOUT_MS = 30_000
# Chromium's sandbox needs user namespaces that containers (and CI) often lack; the tests load only our pages.
LAUNCH_ARGS = ["--no-sandbox"]


@dataclass(frozen=True)
class Chromium:
    executable: str
    source: str  # how it was found, for the line that says so


class NoChromium(Exception):
    """No Chromium to drive; its message says what to install."""


def candidates(playwrights_own: str) -> Iterator[Chromium]:
    """The Chromiums there are, in the order they are preferred. `playwrights_own` is where Playwright keeps its
    own (it is only a candidate once it is there)."""
    chosen = os.environ.get(ENV)
    if chosen:
        yield Chromium(chosen, ENV)
        return  # one asked for by name is the one: a wrong one is said so, not passed over
    for name in ON_PATH:
        if found := shutil.which(name):
            yield Chromium(found, f"{name} on the PATH")
    if os.access(playwrights_own, os.X_OK):
        yield Chromium(playwrights_own, "Playwright's own")


def chromium_to_drive(playwrights_own: str) -> Chromium:
    """For the fixture: the first Chromium there is, or NoChromium."""
    found = next(candidates(playwrights_own), None)
    if found is None:
        raise NoChromium(WHAT_TO_INSTALL)
    return found


def starts(playwright: Playwright, executable: str) -> str | None:
    """None if Playwright can start this Chromium headless, else the first line of why not."""
    try:
        browser = playwright.chromium.launch(executable_path=executable, args=LAUNCH_ARGS, timeout=LAUNCH_TIMEOUT_MS)
    except Error as exc:
        return (exc.message.strip().splitlines() or ["it did not start"])[0]
    browser.close()
    return None


def install_playwrights() -> str | None:
    """Playwright's own Chromium, downloaded; None when it came, else why not (its output is not shown: on a
    machine that cannot reach Playwright's downloads it is a stack trace)."""
    command = [sys.executable, "-m", "playwright", "install", "chromium"]
    if succeeds(command, timeout=DOWNLOAD_SECONDS, PLAYWRIGHT_DOWNLOAD_CONNECTION_TIMEOUT=CONNECTION_TIMEOUT_MS):
        return None
    return "Playwright's download failed"


def install_debians() -> str | None:
    """Debian's chromium package, where apt-get is and we may use it; None when it is installed, else why not."""
    if shutil.which("apt-get") is None:
        return "no apt-get here"
    as_root = [] if os.geteuid() == 0 else ["sudo", "-n"]
    if as_root and not (shutil.which("sudo") and succeeds([*as_root, "true"], timeout=10)):
        return "apt-get needs root or passwordless sudo"
    print("Installing Debian's chromium (apt-get install chromium)", file=sys.stderr)  # it changes the machine
    apt = [*as_root, "apt-get", "-qq", "-o", "DPkg::Lock::Timeout=300"]  # waits out another install's lock
    # A machine that never read the package lists knows no chromium: read them only then.
    if succeeds([*apt, "install", "-y", "chromium"], timeout=APT_SECONDS) or (
        succeeds([*apt, "update"], timeout=APT_SECONDS)
        and succeeds([*apt, "install", "-y", "chromium"], timeout=APT_SECONDS)
    ):
        return None
    return "apt-get install chromium failed"


def succeeds(command: list[str], *, timeout: float, **defaults: str) -> bool:
    """Whether the command ran to success in time (its output is not shown), with these environment variables
    where the environment does not set them."""
    environment = {"DEBIAN_FRONTEND": "noninteractive", **defaults, **os.environ}
    try:
        # S603: each command is one of this module's own, with no input from outside.
        done = subprocess.run(command, env=environment, capture_output=True, timeout=timeout, check=False)  # noqa: S603
    except subprocess.TimeoutExpired:
        return False
    return done.returncode == 0


def find_or_install(playwright: Playwright) -> Chromium:
    """The first Chromium that starts — after installing one if need be — or NoChromium saying what to install."""
    own = playwright.chromium.executable_path
    chosen = os.environ.get(ENV)
    if chosen:
        if problem := starts(playwright, chosen):
            raise NoChromium(
                f"{ENV}={chosen} does not start ({problem}): point it at a Chromium or Chrome, or unset it"
            )
        return Chromium(chosen, ENV)
    tried: set[str] = set()
    reasons: list[str] = []  # why each way came to nothing, for the line that says what to install

    def first_that_starts(extra: tuple[Chromium, ...] = ()) -> Chromium | None:
        for candidate in (*candidates(own), *extra):
            if candidate.executable in tried:
                continue
            tried.add(candidate.executable)
            problem = starts(playwright, candidate.executable)
            if problem is None:
                return candidate
            reasons.append(f"{candidate.source} ({candidate.executable}) does not start: {problem}")
        return None

    if found := first_that_starts():
        return found
    if (why := install_playwrights()) is None:
        if found := first_that_starts():
            return found
    else:
        reasons.append(why)
    if (why := install_debians()) is None:
        if found := first_that_starts((Chromium(DEBIANS, "Debian's package"),)):
            return found
    else:
        reasons.append(why)
    raise NoChromium(f"{WHAT_TO_INSTALL} ({'; '.join(reasons)})")


def main() -> int:
    """Prints the Chromium to drive on stdout (what it is, on stderr) and exits 0; or says what to install on
    stderr, in one line, and exits 1."""
    with sync_playwright() as playwright:
        try:
            found = find_or_install(playwright)
        except NoChromium as exc:
            print(exc, file=sys.stderr)
            return 1
    print(f"Browser tests drive {found.source}: {found.executable}", file=sys.stderr)
    print(found.executable)
    return 0


if __name__ == "__main__":
    sys.exit(main())
