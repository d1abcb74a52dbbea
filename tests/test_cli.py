"""The `callout` command as an operator and an integrator use it."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from callout.cli import main
from shared.webhooks import is_valid_secret


def test_agency_create_prints_a_working_secret_once(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALLOUT_DATABASE_URL", database_url)
    args = ["agency", "create", "harbor", "--name", "Harbor 911", "--hotline", "+12025550100"]

    created = CliRunner().invoke(main, args)
    again = CliRunner().invoke(main, args)

    assert created.exit_code == 0, created.output
    secret = created.output.splitlines()[1]
    assert is_valid_secret(secret)
    assert "/v1/cad/harbor/events" in created.output
    assert again.exit_code == 1 and "exists already" in again.output and "whsec_" not in again.output


def test_agency_create_refuses_a_bad_hotline(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALLOUT_DATABASE_URL", database_url)

    result = CliRunner().invoke(main, ["agency", "create", "x", "--name", "X", "--hotline", "911"])

    assert result.exit_code == 1
    assert "hotline" in result.output


def test_production_refuses_to_start_without_a_real_admin_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALLOUT_ENVIRONMENT", "production")
    monkeypatch.setenv("CALLOUT_DATABASE_URL", "postgresql://nowhere/none")

    result = CliRunner().invoke(main, ["serve"])

    assert result.exit_code == 1
    assert "CALLOUT_ADMIN_TOKEN" in result.output


def test_production_refuses_to_start_without_a_real_data_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALLOUT_ENVIRONMENT", "production")
    monkeypatch.setenv("CALLOUT_DATABASE_URL", "postgresql://nowhere/none")
    monkeypatch.setenv("CALLOUT_ADMIN_TOKEN", "a-real-admin-token-0123456789")

    result = CliRunner().invoke(main, ["serve"])

    assert result.exit_code == 1
    assert "CALLOUT_DATA_KEY" in result.output
