"""Which web chat origins production accepts (pure; scripts/prod.py imports it too).

In production the page comes from the city's HTTPS site: an `http:` origin would let a network
attacker serve a page that talks to the assistant as the resident, and a loopback origin
(`localhost`, `127.0.0.1`, `::1`) is any program on a resident's own machine. Development
(`make run`) uses exactly those, so the check applies only when `WEBCHAT_SECURE_ONLY` is on.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit


def split_origins(value: str) -> list[str]:
    """The comma-separated origins of a setting, blanks dropped."""
    return [origin.strip() for origin in value.split(",") if origin.strip()]


def insecure_origins(origins: list[str]) -> list[str]:
    """The origins production must refuse.

    Args:
        origins: Origins such as "https://chat.city.example".

    Returns:
        Those that are not `https://host[:port]`, or whose host is a loopback or unspecified
        address, `localhost` or a `*.localhost` name, or a wildcard.
    """
    refused = []
    for origin in origins:
        parts = urlsplit(origin)
        host = (parts.hostname or "").lower()
        if (
            parts.scheme != "https"
            or not host
            or "*" in origin
            or parts.path not in ("", "/")
            or parts.query
            or parts.username is not None
            or host == "localhost"
            or host.endswith(".localhost")
            or _is_local_address(host)
        ):
            refused.append(origin)
    return refused


def _is_local_address(host: str) -> bool:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified
