"""The one place configuration comes from: environment variables and `.env`."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import make_url

API_PREFIX = "/api/v1"
DEFAULT_SQLITE_URL = "sqlite+aiosqlite:///./var/helpdesk.db"
DEV_SECRET_KEY = "dev-insecure-change-me-" + "0" * 24


class Settings(BaseSettings):
    """Every knob of the service. Read once per process through `get_settings()`."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    database_url: str = Field(
        default=DEFAULT_SQLITE_URL,
        description="SQLAlchemy async URL; the owner of the schema (runs migrations).",
    )
    database_app_role: str = Field(
        default="helpdesk_app",
        pattern=r"^[a-z_][a-z0-9_]{0,62}$",
        description="PostgreSQL role tenant traffic logs in as: not a superuser, not the "
        "owner, a member of neither, no BYPASSRLS (created and allowed to log in by "
        "`helpdesk migrate`).",
    )
    database_app_url: str | None = Field(
        default=None,
        description="URL tenant traffic connects with, as the app role. Default: "
        "DATABASE_URL with its user replaced by DATABASE_APP_ROLE (same password).",
    )
    database_pool_size: int = Field(
        default=20,
        ge=1,
        le=200,
        description="Kept open per process: below the concurrency, overflow connections churn.",
    )
    database_max_overflow: int = Field(default=10, ge=0, le=200)
    database_pool_pre_ping: bool = Field(
        default=False,
        description="Test each pooled connection on checkout. With asyncpg that is three "
        "round trips per request (BEGIN, ping, ROLLBACK), so it is off: after a database "
        "restart a dead connection fails one request with 503 + Retry-After and is replaced.",
    )
    database_pool_recycle_seconds: int = Field(
        default=1800,
        ge=-1,
        description="Replace pooled connections older than this (-1: never), before idle "
        "timeouts of proxies and firewalls cut them.",
    )
    database_echo: bool = False
    redis_url: str | None = Field(
        default=None, description="Redis for arq jobs and shared rate limits; none = in-process."
    )
    job_queue_name: str = Field(default="arq:queue", description="arq queue (Redis key).")
    redis_key_prefix: str = Field(
        default="helpdesk", description="Namespace of the service's own Redis keys."
    )
    secret_key: SecretStr = SecretStr(DEV_SECRET_KEY)
    rate_limit_per_minute: int = Field(
        default=6000, ge=0, description="Per credential; 0 turns API rate limiting off."
    )
    rate_limit_organization_per_minute: int | None = Field(
        default=None, ge=1, description="Whole organization; default 10x the per-credential."
    )
    webhook_allow_private_targets: bool = False
    max_request_body_bytes: int = Field(default=1_048_576, ge=1024)
    max_attachment_bytes: int = Field(default=25 * 1_048_576, ge=1024)
    max_inbound_message_bytes: int = Field(
        default=30 * 1_048_576,
        ge=1024,
        description="Largest message an inbound channel accepts (mail with attachments "
        "outgrows MAX_REQUEST_BODY_BYTES); larger ones answer 413 and are not stored.",
    )
    storage_dir: Path = Path("var/storage")
    cors_origins: list[str] = Field(default_factory=list)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_json: bool | None = Field(
        default=None, description="JSON logs; default: on in production, off elsewhere."
    )
    access_token_ttl_seconds: int = Field(default=900, ge=60)
    refresh_token_ttl_seconds: int = Field(
        default=30 * 24 * 3600, ge=3600, description="A session idle this long ends."
    )
    login_account_max_failures: int = Field(default=10, ge=1)
    login_account_window_seconds: int = Field(default=15 * 60, ge=1)
    login_ip_max_attempts: int = Field(default=300, ge=1)
    login_ip_window_seconds: int = Field(default=60, ge=1)
    sla_timers_in_process: bool = Field(
        default=True,
        description="Without REDIS_URL, run the SLA timer loop in the API process.",
    )
    worker_metrics_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="Where `helpdesk worker` serves its Prometheus metrics (none: not served).",
    )
    sla_timer_poll_seconds: float = Field(
        default=0.5,
        ge=0.05,
        le=60,
        description="The longest an SLA timer loop sleeps before it looks for due deadlines.",
    )
    activity_write_interval_seconds: int = Field(
        default=60, ge=1, description="At most one last-activity write per user per interval."
    )

    @field_validator("database_url", "database_app_url")
    @classmethod
    def _async_driver_only(cls, url: str | None) -> str | None:
        # A sync driver would block the event loop; catch the misconfiguration at start-up.
        if url is None:
            return None
        if url.startswith(("postgresql://", "postgres://")):
            return "postgresql+asyncpg://" + url.split("://", 1)[1]
        if url.startswith("sqlite://"):
            return "sqlite+aiosqlite://" + url.split("://", 1)[1]
        return url

    @model_validator(mode="after")
    def _real_secret_in_production(self) -> Settings:
        if self.environment == "production" and (
            self.secret_key.get_secret_value() == DEV_SECRET_KEY
            or len(self.secret_key.get_secret_value()) < 32
        ):
            raise ValueError("SECRET_KEY must be set (32+ characters) in production")
        return self

    @property
    def organization_rate_limit(self) -> int:
        return self.rate_limit_organization_per_minute or 10 * self.rate_limit_per_minute

    @property
    def tenant_database_url(self) -> str:
        """Where tenant sessions connect: as the app role, so that nothing a tenant
        transaction runs (`RESET ROLE`, `SET ROLE`) can reach the owner's rights."""
        if self.database_app_url is not None or self.is_sqlite:
            return self.database_app_url or self.database_url
        url = make_url(self.database_url).set(username=self.database_app_role)
        return url.render_as_string(hide_password=False)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def json_logs(self) -> bool:
        return self.environment == "production" if self.log_json is None else self.log_json


@lru_cache
def get_settings() -> Settings:
    return Settings()
