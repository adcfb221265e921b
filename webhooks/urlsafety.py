"""Where a webhook may be sent: the one home of the URL rules (used at save and at send).

An endpoint URL must be ``http``/``https`` (``https`` only when ``WEBHOOK_REQUIRE_HTTPS``,
on in production) and its host may not be or resolve to a private, loopback, link-local,
multicast, reserved or unspecified address, unless ``WEBHOOK_ALLOW_PRIVATE_URLS`` (on when
``DEBUG``). The check runs when an endpoint is saved and again before every send, against
the addresses the request will then connect to (``webhooks.http`` pins the connection to
them), so a name that is re-pointed at an internal address after the check (DNS rebinding)
is refused rather than followed.
"""

import ipaddress
import socket
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class UnsafeUrl(ValidationError):
    """The URL is not allowed as a webhook target."""


def _forbidden(ip: IpAddress) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
    )


def url_parts(url: str) -> tuple[str, str, int]:
    """``(scheme, host, port)`` of an allowed-looking URL; ``UnsafeUrl`` for a bad shape."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeUrl("Enter a valid URL.", code="invalid") from exc
    scheme = parts.scheme.lower()
    allowed = ("https",) if settings.WEBHOOK_REQUIRE_HTTPS else ("http", "https")
    if scheme not in allowed:
        raise UnsafeUrl(
            "The URL must start with https://."
            if settings.WEBHOOK_REQUIRE_HTTPS
            else "The URL must start with http:// or https://.",
            code="scheme",
        )
    if not parts.hostname:
        raise UnsafeUrl("The URL has no host.", code="invalid")
    if parts.username or parts.password:
        raise UnsafeUrl("The URL may not contain credentials.", code="invalid")
    return scheme, parts.hostname, port or (443 if scheme == "https" else 80)


def url_resolve(url: str) -> tuple[str, str, int, list[IpAddress]]:
    """Check ``url`` and resolve its host: ``(scheme, host, port, addresses)``.

    Raises ``UnsafeUrl`` when the URL is malformed, the scheme is not allowed, the host does
    not resolve, or any address it resolves to is private, loopback, link-local, multicast,
    reserved or unspecified (unless ``WEBHOOK_ALLOW_PRIVATE_URLS``).
    """
    scheme, host, port = url_parts(url)
    try:
        addresses = [ipaddress.ip_address(host)]
    except ValueError:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            raise UnsafeUrl(f"The host {host} does not resolve.", code="unresolved") from exc
        addresses = []
        for info in infos:
            ip = ipaddress.ip_address(str(info[4][0]).split("%")[0])
            if ip not in addresses:
                addresses.append(ip)
    if not settings.WEBHOOK_ALLOW_PRIVATE_URLS:
        for ip in addresses:
            if _forbidden(ip):
                raise UnsafeUrl(
                    f"The host {host} resolves to a private or local address ({ip}).",
                    code="private",
                )
    return scheme, host, port, addresses


def url_check_at_save(url: str) -> None:
    """The save-time check: as ``url_resolve``, except that a host that does not resolve
    yet is accepted (every send resolves and checks again)."""
    try:
        url_resolve(url)
    except UnsafeUrl as exc:
        if exc.code != "unresolved":
            raise
