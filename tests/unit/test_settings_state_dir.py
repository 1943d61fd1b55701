"""The service finds its key folder, ARI password file and roster where the scripts put them."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpline_pbx.settings import Settings, database_url_from_env, keys_dir_from_env

SECRET = "generated-secret-0123456789abcdef"


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in (
        "HELPLINE_KEYS_DIR",
        "HELPLINE_ARI_PASSWORD_FILE",
        "HELPLINE_DATABASE_URL",
        "HELPLINE_ARI_PASSWORD",
    ):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "ari-password").write_text(SECRET + "\n", encoding="utf-8")
    monkeypatch.setenv("HELPLINE_STATE_DIR", str(tmp_path))
    return tmp_path


def test_defaults_follow_the_state_dir(state: Path) -> None:
    settings = Settings()
    assert settings.keys_dir == state / "keys"
    assert settings.ari_password_file == state / "secrets" / "ari-password"
    assert settings.database_url == f"sqlite+aiosqlite:///{state}/roster.db"
    assert settings.ari_secret().get_secret_value() == SECRET
    assert keys_dir_from_env() == state / "keys"
    assert database_url_from_env() == settings.database_url


def test_explicit_settings_win(
    state: Path, monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    (elsewhere / "ari").write_text(SECRET, encoding="utf-8")
    monkeypatch.setenv("HELPLINE_KEYS_DIR", str(elsewhere / "k"))
    monkeypatch.setenv("HELPLINE_ARI_PASSWORD_FILE", str(elsewhere / "ari"))
    monkeypatch.setenv("HELPLINE_DATABASE_URL", "postgresql+asyncpg://line@127.0.0.1/roster")
    settings = Settings()
    assert settings.keys_dir == elsewhere / "k"
    assert settings.ari_password_file == elsewhere / "ari"
    assert settings.database_url == "postgresql+asyncpg://line@127.0.0.1/roster"
    assert keys_dir_from_env() == elsewhere / "k"
