"""Run the Alembic migrations to head for the configured database."""

from pathlib import Path

from alembic import command
from alembic.config import Config

from companion.app.core.config import Settings

INI = Path(__file__).resolve().parents[2] / "alembic.ini"


def alembic_config(settings: Settings) -> Config:
    """An Alembic Config pointing at settings' database."""
    cfg = Config(str(INI))
    cfg.set_main_option("sqlalchemy.url", settings.sync_database_url.replace("%", "%%"))
    cfg.attributes["configure_logger"] = False
    return cfg


def upgrade(settings: Settings) -> None:
    """Bring the schema to the newest revision."""
    command.upgrade(alembic_config(settings), "head")
