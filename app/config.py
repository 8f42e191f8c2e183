"""The one place configuration comes from: environment variables and `.env`."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qsl, unquote, urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import make_url

API_PREFIX = "/api/v1"
DEFAULT_SQLITE_URL = "sqlite+aiosqlite:///./var/helpdesk.db"
DEV_SECRET_KEY = "dev-insecure-change-me-" + "0" * 24


@dataclass(frozen=True, slots=True)
class SmtpServer:
    """Where replies are mailed: `SMTP_URL` read."""

    host: str
    port: int
    username: str | None
    password: str | None
    # smtps://: TLS from the first byte; smtp://…?starttls=true: upgraded after EHLO.
    implicit_tls: bool
    starttls: bool


def smtp_server(url: str) -> SmtpServer:
    """`smtp://user:pass@host:port[?starttls=true]` or `smtps://user:pass@host:port`;
    ValueError saying what is wrong."""
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps"):
        raise ValueError("SMTP_URL must start with smtp:// or smtps://")
    try:
        port = parts.port
    except ValueError:
        raise ValueError("SMTP_URL has a port that is not a number from 1 to 65535") from None
    if not parts.hostname:
        raise ValueError("SMTP_URL names no host (smtp://host:port)")
    if parts.path not in ("", "/") or parts.fragment:
        raise ValueError("SMTP_URL takes no path: smtp://user:pass@host:port?starttls=true")
    options = dict(parse_qsl(parts.query, keep_blank_values=True))
    unknown = set(options) - {"starttls"}
    if unknown:
        raise ValueError(f"SMTP_URL knows only the option starttls, not {sorted(unknown)}")
    starttls_value = options.get("starttls", "false").lower()
    if starttls_value not in ("true", "false"):
        raise ValueError("SMTP_URL: starttls is true or false")
    implicit_tls = parts.scheme == "smtps"
    starttls = starttls_value == "true"
    if implicit_tls and starttls:
        raise ValueError("SMTP_URL: smtps:// is TLS already; starttls=true goes with smtp://")
    if parts.password is not None and not parts.username:
        raise ValueError("SMTP_URL has a password but no user name")
    return SmtpServer(
        host=parts.hostname,
        port=port or (465 if implicit_tls else 587 if starttls else 25),
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
        implicit_tls=implicit_tls,
        starttls=starttls,
    )


class Settings(BaseSettings):
    """Every knob of the service. Read once per process through `get_settings()`."""

    # Errors name the setting, never echo its value: SMTP_URL and the database URLs hold
    # passwords, and a start-up error goes to the log.
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", hide_input_in_errors=True
    )

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
    outbound_ca_file: Path | None = Field(
        default=None,
        description="PEM file of certificate authorities trusted for webhook deliveries, "
        "chat replies and the SMTP server besides the public ones (an internal CA).",
    )
    max_request_body_bytes: int = Field(default=1_048_576, ge=1024)
    max_attachment_bytes: int = Field(default=25 * 1_048_576, ge=1024)
    max_inbound_message_bytes: int = Field(
        default=30 * 1_048_576,
        ge=1024,
        description="Largest message an inbound channel accepts (mail with attachments "
        "outgrows MAX_REQUEST_BODY_BYTES); larger ones answer 413 and are not stored.",
    )
    storage_dir: Path = Path("var/storage")
    smtp_url: SecretStr | None = Field(
        default=None,
        description="Where replies to email tickets are mailed: smtp://user:pass@host:port "
        "(?starttls=true to upgrade the connection) or smtps://… (TLS from the start). "
        "Unset: each mail is written to MAIL_DIR as an .eml file instead.",
    )
    mail_dir: Path = Field(
        default=Path("var/mail"),
        description="Without SMTP_URL, where outgoing mail is written (one .eml per message).",
    )
    reply_send_delay_seconds: float = Field(
        default=10.0,
        ge=0,
        le=3600,
        description="How long after an agent's reply its first sending attempt waits, so the "
        "files uploaded to the reply right after it go out with it.",
    )
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

    @field_validator("outbound_ca_file")
    @classmethod
    def _loadable_ca_file(cls, path: Path | None) -> Path | None:
        # Caught at start-up: at send time a broken file would look like a passing outage
        # and leave every delivery waiting.
        if path is not None:
            try:
                ssl.create_default_context().load_verify_locations(cafile=path)
            except (OSError, ssl.SSLError) as exc:
                problem = f"cannot load certificate authorities from {path}: {exc}"
                raise ValueError(problem) from None
        return path

    @field_validator("smtp_url")
    @classmethod
    def _readable_smtp_url(cls, url: SecretStr | None) -> SecretStr | None:
        # Caught at start-up rather than at the first reply a worker tries to mail.
        if url is not None:
            smtp_server(url.get_secret_value())
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
    def smtp(self) -> SmtpServer | None:
        """The SMTP server replies are mailed through; None: they are written to MAIL_DIR."""
        return smtp_server(self.smtp_url.get_secret_value()) if self.smtp_url else None

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def json_logs(self) -> bool:
        return self.environment == "production" if self.log_json is None else self.log_json


@lru_cache
def get_settings() -> Settings:
    return Settings()
