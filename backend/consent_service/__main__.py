"""Command line of the consent service.

python -m consent_service serve [--host 127.0.0.1] [--port 8000]
python -m consent_service migrate
python -m consent_service catalog load [FILE]
python -m consent_service audit verify
python -m consent_service retention
python -m consent_service consume
python -m consent_service staff create-user NAME [--role admin|viewer|counter|editor|approver]
python -m consent_service staff export-labels --out data/nlu/staff_labels.yml
python -m consent_service db create-roles [--admin-url URL]
python -m consent_service notices keygen
python -m consent_service send-notices [--once]
"""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from consent_service import audit, catalog, code_attempts, links, roles
from consent_service.analytics import consumer
from consent_service.analytics import store as analytics_store
from consent_service.config import InsecureSettings, Settings, get_sender_secrets, get_settings
from consent_service.consents import purge_expired_idempotency
from consent_service.db import make_engine, make_sessionmaker
from consent_service.main import (
    code_attempts_cutoff,
    create_app,
    idempotency_cutoff,
    link_codes_cutoff,
    prepare_database,
    utc_now,
)
from consent_service.notices import seal, sender, subscriptions
from consent_service.staff import auth, labels

# The console's roles (staff/auth.py) and `approver` (migration 0009), which may approve notices.
STAFF_ROLES = sorted({*auth.ROLES, "approver"})


def main(argv: list[str] | None = None) -> int:
    """Run one command.

    Args:
        argv: Arguments (default: sys.argv).

    Returns:
        The exit code: 0 on success, 1 when the audit chain is broken, 2 when the settings are
        unsafe to serve with.
    """
    parser = argparse.ArgumentParser(prog="python -m consent_service", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the HTTP service")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    commands.add_parser("migrate", help="apply migrations and load the catalogue if none")
    catalog_cmd = commands.add_parser("catalog", help="manage the catalogue")
    catalog_cmd.add_argument("action", choices=["load"])
    catalog_cmd.add_argument("file", nargs="?", type=Path)
    audit_cmd = commands.add_parser("audit", help="check the audit chain")
    audit_cmd.add_argument("action", choices=["verify"])
    staff_cmd = commands.add_parser("staff", help="manage staff accounts of the console")
    staff_cmd.add_argument("action", choices=["create-user", "export-labels"])
    staff_cmd.add_argument("username", nargs="?", help="the account (create-user)")
    staff_cmd.add_argument("--role", choices=STAFF_ROLES, default="admin")
    staff_cmd.add_argument(
        "--out", type=Path, help="export-labels: the Rasa NLU file to write (masked texts only)"
    )
    commands.add_parser(
        "retention",
        help="delete expired idempotency records, codes and analytics events; end web/rest "
        "notice subscriptions past NOTICE_WEB_SUBSCRIPTION_DAYS",
    )
    commands.add_parser(
        "consume", help="store Rasa's events (from its event broker) for the staff console"
    )
    db_cmd = commands.add_parser("db", help="set up the PostgreSQL roles (as a superuser)")
    db_cmd.add_argument("action", choices=["create-roles"])
    db_cmd.add_argument(
        "--admin-url", help="a superuser's PostgreSQL URL (default: CONSENT_DB_ADMIN_URL)"
    )
    notices_cmd = commands.add_parser("notices", help="health notices (docs/notices.md)")
    notices_cmd.add_argument("action", choices=["keygen"])
    send_cmd = commands.add_parser(
        "send-notices", help="send approved notices on LINE (needs NOTICE_PRIVATE_KEY)"
    )
    send_cmd.add_argument("--once", action="store_true", help="one pass, then exit")
    args = parser.parse_args(argv)

    if args.command == "notices":
        private, public = seal.generate_keypair()
        print(f"NOTICE_PRIVATE_KEY={private}")
        print(f"NOTICE_PUBLIC_KEY={public}")
        return 0
    settings = get_settings()
    if args.command == "send-notices":
        return send_notices(settings, once=args.once)
    if args.command == "serve":
        import uvicorn

        try:
            app = create_app(settings)
        except InsecureSettings as error:
            print(error, file=sys.stderr)
            return 2
        uvicorn.run(app, host=args.host, port=args.port, log_level="info")
        return 0
    if args.command == "db":
        admin = settings.consent_db_admin_url
        admin_url = args.admin_url or (admin.get_secret_value() if admin else "")
        if not admin_url:
            print("Give --admin-url or set CONSENT_DB_ADMIN_URL (a superuser).", file=sys.stderr)
            return 2
        roles.create_roles(admin_url, settings)
        print("Roles are set up; run `migrate` (as the owner) to grant the table privileges.")
        return 0
    engine = make_engine(settings.database_url)
    try:
        if args.command == "migrate":
            prepare_database(engine, settings, utc_now())
            print("Database is up to date.")
            return 0
        factory = make_sessionmaker(engine, settings.audit_key())
        if args.command == "retention":
            with factory() as session, session.begin():
                purged = purge_expired_idempotency(session, idempotency_cutoff(settings, utc_now()))
                codes = code_attempts.purge(session, code_attempts_cutoff(settings, utc_now()))
                link_codes = links.purge(session, link_codes_cutoff(settings, utc_now()))
                cutoff = utc_now() - dt.timedelta(days=settings.analytics_retention_days)
                analytics = analytics_store.purge(session, cutoff)
                unlabelled = labels.purge(session, cutoff)
                expired = subscriptions.expire(
                    session, utc_now(), settings.notice_web_subscription_days
                )
            print(f"Deleted {purged} expired idempotency records.")
            print(f"Deleted {codes} failed receipt-code look-ups older than their window.")
            print(f"Deleted {link_codes} link codes expired for LINK_CODE_TTL_SECONDS.")
            print(f"Deleted {analytics} analytics events older than ANALYTICS_RETENTION_DAYS.")
            print(f"Deleted {unlabelled} staff labels of messages no longer kept.")
            print(f"Ended {expired} web/rest notice subscriptions (NOTICE_WEB_SUBSCRIPTION_DAYS).")
            return 0
        if args.command == "consume":
            return consume(settings, factory)
        if args.command == "catalog":
            prepare_database(engine, settings, utc_now())
            with factory() as session, session.begin():
                spec = catalog.load(session, args.file or settings.consent_catalog_path, utc_now())
            print(f"Loaded {len(spec.items)} items and {len(spec.offers)} offers.")
            return 0
        if args.command == "staff" and args.action == "export-labels":
            return export_labels(factory, args.out)
        if args.command == "staff":
            if not args.username:
                print("Give the account's name: staff create-user NAME", file=sys.stderr)
                return 2
            prepare_database(engine, settings, utc_now())
            password = os.environ.get("STAFF_PASSWORD") or getpass.getpass("Password: ")
            with factory() as session, session.begin():
                secret = auth.create_user(
                    session, args.username, password, args.role, utc_now(), settings
                )
            print(f"Created {args.role} {args.username}. Enrol this in an authenticator app:")
            print(f"TOTP secret: {secret}")
            print(auth.provisioning_uri(args.username, secret))
            return 0
        with factory() as session:
            result = audit.verify(session)
        print(json.dumps(result.as_dict(), ensure_ascii=False))
        return 0 if result.ok else 1
    finally:
        engine.dispose()


def export_labels(factory: sessionmaker[Session], out: Path | None) -> int:
    """Write the console's labels as Rasa NLU YAML (masked texts only) for a developer.

    Reads the consent database as it is (no migration): `make staff-labels` runs this.

    Args:
        factory: Sessions of the consent database.
        out: The file to write (its folder must exist).

    Returns:
        0 once written; 2 without --out.
    """
    if out is None:
        print("Give the file to write: staff export-labels --out data/nlu/staff_labels.yml",
              file=sys.stderr)  # fmt: skip
        return 2
    with factory() as session:
        text = labels.export_yaml(session, labels.label_intents(), utc_now())
    out.write_text(text, encoding="utf-8")
    examples = sum(1 for line in text.splitlines() if line.startswith("    - "))
    print(f"Wrote {examples} labelled examples to {out}: review them before committing.")
    return 0


def consume(settings: Settings, factory: sessionmaker[Session]) -> int:
    """Run the consumer of Rasa's events until SIGTERM or Ctrl-C.

    Args:
        settings: The service's settings (ANALYTICS_SOURCE and its address).
        factory: Sessions of the consent database (migrated first when allowed).

    Returns:
        0 once stopped.
    """
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    stop = threading.Event()
    for number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(number, lambda *_: stop.set())
    consumer.run(settings, factory, stop, utc_now)
    return 0


def send_notices(settings: Settings, *, once: bool) -> int:
    """Run the notice sender until SIGTERM or Ctrl-C (or one pass with `once`).

    Reads NOTICE_PRIVATE_KEY (the only command that does) and fails fast without it.

    Args:
        settings: The service's settings.
        once: Send what is due now, then return.

    Returns:
        0 once stopped; 2 without NOTICE_PRIVATE_KEY or LINE_CHANNEL_ACCESS_TOKEN.
    """
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        config = sender.SenderConfig.from_settings(settings, get_sender_secrets())
    except InsecureSettings as error:
        print(error, file=sys.stderr)
        return 2
    engine = make_engine(settings.database_url)
    try:
        factory = make_sessionmaker(engine, settings.audit_key())
        stop = threading.Event()
        if not once:
            for number in (signal.SIGTERM, signal.SIGINT):
                signal.signal(number, lambda *_: stop.set())
        sender.run(factory, config, stop, utc_now, once=once)
    finally:
        engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
