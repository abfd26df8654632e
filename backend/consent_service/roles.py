"""PostgreSQL roles: who owns the schema, who runs the service, who only reads.

Three login roles, named by the user part of their URLs in the settings:

- the **owner** (CONSENT_MIGRATION_DATABASE_URL) owns the database and every table and runs
  the migrations; nothing else connects as it;
- the **app** (CONSENT_DATABASE_URL) has no DDL and exactly the table privileges of
  `APP_PRIVILEGES`: on `audit_log` only SELECT and INSERT, so entries cannot be changed or
  deleted through it; no DELETE on consents or receipts;
- the **read-only** analytics role (CONSENT_READONLY_DATABASE_URL) has SELECT on
  `READONLY_TABLES`. No role here reads Rasa's database: the console's analytics come from
  Rasa's event broker (`consent_service.analytics`).

`create_roles` (as a superuser: `python -m consent_service db create-roles --admin-url ...`)
creates or updates the roles and hands the database to the owner; `apply_grants` (as the
owner, after every migration, so new tables are covered) sets the table privileges.
"""

from __future__ import annotations

import logging
import re

from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.engine import URL, make_url

from consent_service.config import Settings

log = logging.getLogger("consent_service.roles")

_CATALOGUE_WRITE = ("SELECT", "INSERT", "UPDATE")
# What the service (the app role) may do to each table; a table missing here gets nothing
# (tests/backend/test_roles.py makes every new table choose).
APP_PRIVILEGES: dict[str, tuple[str, ...]] = {
    "alembic_version": ("SELECT",),
    "data_items": _CATALOGUE_WRITE,
    "recipients": _CATALOGUE_WRITE,
    "purposes": _CATALOGUE_WRITE,
    "terms": ("SELECT", "INSERT"),
    "offers": _CATALOGUE_WRITE,
    # an offer's items and benefits are replaced when the catalogue changes
    "offer_items": ("SELECT", "INSERT", "UPDATE", "DELETE"),
    "offer_benefits": ("SELECT", "INSERT", "UPDATE", "DELETE"),
    "ethics_approvals": ("SELECT", "INSERT"),
    "consents": ("SELECT", "INSERT", "UPDATE"),
    "receipts": ("SELECT", "INSERT"),
    "idempotency_records": ("SELECT", "INSERT", "DELETE"),
    "receipt_code_failures": ("SELECT", "INSERT", "DELETE"),
    "link_codes": ("SELECT", "INSERT", "UPDATE", "DELETE"),
    "subject_links": ("SELECT", "INSERT", "UPDATE"),
    "subject_link_members": ("SELECT", "INSERT", "DELETE"),
    "audit_log": ("SELECT", "INSERT"),
    "audit_head": ("SELECT", "INSERT", "UPDATE"),
    "staff_users": ("SELECT", "INSERT", "UPDATE"),
    "staff_sessions": ("SELECT", "INSERT", "UPDATE", "DELETE"),
    "staff_access_log": ("SELECT", "INSERT"),
    # analytics from Rasa's event broker: `consume` inserts, retention deletes
    "analytics_events": ("SELECT", "INSERT", "DELETE"),
    "analytics_offsets": ("SELECT", "INSERT", "UPDATE"),
    # the labelling loop (issue 15): a re-label or a check updates the row; the analytics
    # retention deletes a label with its message
    "staff_labels": ("SELECT", "INSERT", "UPDATE", "DELETE"),
    # health notices (issue 17): a sealed recipient is deleted with the last LINE subscription
    "notice_topics": _CATALOGUE_WRITE,
    "notice_subscriptions": ("SELECT", "INSERT", "UPDATE"),
    "notice_recipients": ("SELECT", "INSERT", "UPDATE", "DELETE"),
    "notices": ("SELECT", "INSERT", "UPDATE"),
    "notice_batches": ("SELECT", "INSERT", "UPDATE"),
    "notice_web_deliveries": ("SELECT", "INSERT"),
}
# What the read-only analytics role may read in the consent database.
READONLY_TABLES = (
    "data_items",
    "recipients",
    "purposes",
    "terms",
    "offers",
    "offer_items",
    "offer_benefits",
    "ethics_approvals",
    "consents",
)
_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class RoleSetupError(ValueError):
    """The settings do not describe separate PostgreSQL roles."""


def _user(url: str, setting: str) -> str:
    name = make_url(url).username or ""
    if not _NAME.fullmatch(name):
        raise RoleSetupError(f"{setting}: the user must be a plain lower-case role name")
    return name


def _quote(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise RoleSetupError(f"not a plain role or table name: {name!r}")
    return f'"{name}"'


def _literal(value: str) -> str:
    """A SQL string literal (role passwords cannot be bound parameters in DDL)."""
    return "'" + value.replace("'", "''") + "'"


def app_and_readonly(settings: Settings) -> tuple[str, str | None]:
    """The app's and the read-only role's names from their URLs.

    Args:
        settings: The settings.

    Returns:
        (app role, read-only role or None when CONSENT_READONLY_DATABASE_URL is unset).
    """
    readonly = settings.consent_readonly_database_url
    return (
        _user(settings.database_url, "CONSENT_DATABASE_URL"),
        _user(readonly, "CONSENT_READONLY_DATABASE_URL") if readonly else None,
    )


def apply_grants(owner: Engine, settings: Settings) -> None:
    """Give the app and read-only roles exactly their privileges (run as the owner).

    Everything the roles had on the tables is revoked first, in the same transaction, so a
    privilege removed here (UPDATE on the audit log, say) is gone afterwards. Nothing happens
    on SQLite or when the app connects as the owner itself.

    Args:
        owner: The database as the schema owner.
        settings: The roles' URLs.
    """
    if owner.dialect.name != "postgresql":
        return
    app, readonly = app_and_readonly(settings)
    with owner.begin() as connection:
        if app == connection.execute(text("SELECT current_user")).scalar_one():
            return
        tables = set(
            connection.execute(
                text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
            ).scalars()
        )
        grantees = [name for name in (app, readonly) if name]
        for table in sorted(tables):
            for grantee in grantees:
                connection.execute(text(f"REVOKE ALL ON {_quote(table)} FROM {_quote(grantee)}"))
            privileges = APP_PRIVILEGES.get(table)
            if privileges is None:
                log.warning("Table %s has no declared privileges: the app cannot use it", table)
            else:
                connection.execute(
                    text(f"GRANT {', '.join(privileges)} ON {_quote(table)} TO {_quote(app)}")
                )
            if readonly and table in READONLY_TABLES:
                connection.execute(text(f"GRANT SELECT ON {_quote(table)} TO {_quote(readonly)}"))
        connection.execute(text(f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {_quote(app)}"))


def create_roles(admin_url: str, settings: Settings) -> None:
    """Create (or update) the three roles and hand the consent database to the owner.

    Run as a PostgreSQL superuser. Idempotent: passwords are (re)set from the URLs, an
    existing database and its tables are handed to the owner, and PUBLIC loses its default
    rights on the database (connecting, temporary tables) and on the `public` schema.

    Args:
        admin_url: A superuser's URL (any database of the server).
        settings: CONSENT_MIGRATION_DATABASE_URL (owner), CONSENT_DATABASE_URL (app) and
            CONSENT_READONLY_DATABASE_URL (read-only), all PostgreSQL, with passwords.

    Raises:
        RoleSetupError: When the URLs do not name three distinct roles on one database.
    """
    owner_url, app_url = make_url(settings.migration_database_url), make_url(settings.database_url)
    if not settings.consent_readonly_database_url:
        raise RoleSetupError("CONSENT_READONLY_DATABASE_URL is not set")
    readonly_url = make_url(settings.consent_readonly_database_url)
    urls = {"owner": owner_url, "app": app_url, "read-only": readonly_url}
    for name, url in urls.items():
        if url.get_backend_name() != "postgresql":
            raise RoleSetupError(f"the {name} URL is not PostgreSQL")
    owner = _user(settings.migration_database_url, "CONSENT_MIGRATION_DATABASE_URL")
    app = _user(settings.database_url, "CONSENT_DATABASE_URL")
    readonly = _user(settings.consent_readonly_database_url, "CONSENT_READONLY_DATABASE_URL")
    if len({owner, app, readonly}) != 3:
        raise RoleSetupError("the owner, app and read-only URLs must name three different roles")
    if len({u.database for u in urls.values()}) != 1 or not owner_url.database:
        raise RoleSetupError("the owner, app and read-only URLs must name the same database")
    database = owner_url.database
    admin = make_url(admin_url)
    _as_admin(admin, "postgres", _cluster_statements(urls, database))
    _as_admin(admin, database, _schema_statements(owner, [app, readonly]))


def _cluster_statements(urls: dict[str, URL], database: str) -> list[str]:
    statements = []
    for url in urls.values():
        name = _quote(url.username or "")
        password = url.password
        if not password:
            raise RoleSetupError(f"the URL of role {url.username} has no password")
        statements.append(
            f"DO $$ BEGIN CREATE ROLE {name}; EXCEPTION WHEN duplicate_object THEN NULL; END $$"
        )
        statements.append(
            f"ALTER ROLE {name} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION "
            f"NOBYPASSRLS PASSWORD {_literal(str(password))}"
        )
    owner, app, readonly = (_quote(u.username or "") for u in urls.values())
    db = _quote(database)
    statements += [
        f"ALTER DATABASE {db} OWNER TO {owner}",
        f"REVOKE ALL ON DATABASE {db} FROM PUBLIC",
        f"GRANT CONNECT ON DATABASE {db} TO {app}, {readonly}",
    ]
    return statements


def _schema_statements(owner: str, others: list[str]) -> list[str]:
    names = ", ".join(_quote(n) for n in others)
    return [
        f"ALTER SCHEMA public OWNER TO {_quote(owner)}",
        "REVOKE ALL ON SCHEMA public FROM PUBLIC",
        f"GRANT USAGE ON SCHEMA public TO {names}",
        # Tables created before the roles existed (by a superuser) go to the owner.
        "DO $$ DECLARE t record; BEGIN "  # noqa: S608 (a role name checked by _quote)
        "FOR t IN SELECT tablename FROM pg_tables WHERE schemaname = 'public' LOOP "
        "EXECUTE 'ALTER TABLE public.' || quote_ident(t.tablename) || "
        f"' OWNER TO {_quote(owner)}'; "
        "END LOOP; END $$",
    ]


def _as_admin(admin: URL, database: str, statements: list[str]) -> None:
    if database == "postgres" and admin.database:
        database = admin.database
    engine = create_engine(admin.set(database=database), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            _run(connection, statements)
    finally:
        engine.dispose()


def _run(connection: Connection, statements: list[str]) -> None:
    for statement in statements:
        connection.exec_driver_sql(statement)
