"""Which requests may come from where: the Host and Origin checks of the collector.

A token-less collector on loopback is reachable by any web page the user opens: a page
from another origin can send a "simple" cross-origin request (no preflight: a POST with
``text/plain``), and a DNS-rebinding page (``attacker.example`` resolving to 127.0.0.1)
can even read the answers, since the browser then counts the collector as the page's
own origin. So:

- the ``Host`` header must name the collector: on a loopback bind, ``localhost`` or a
  loopback address (any port); otherwise any name, unless ``allowed_hosts`` lists them
  (the token is what guards a non-loopback bind). ``allowed_hosts`` adds names in both
  cases; ``*`` allows any.
- a request that says it comes from a web page (an ``Origin`` header, or
  ``Sec-Fetch-Site: cross-site|same-site``) is refused unless its origin is in
  ``allowed_origins``: the collector serves no pages, so no page of its own calls it.
- each endpoint that reads or writes state takes only its content types (see the app),
  so a browser cannot send one without a CORS preflight, which the collector refuses.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

__all__ = ["RequestOrigin"]


def _host_name(value: str) -> str:
    """``name[:port]`` or ``[v6][:port]`` → the lower-cased name without the port."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1:value.find("]")] if "]" in value else value
    if value.count(":") == 1:
        value = value.split(":", 1)[0]
    return value.rstrip(".")


def is_loopback(host: str) -> bool:
    """``host`` (a bind address or a configured host, IPv6 maybe in brackets) is loopback."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _is_loopback_name(name: str) -> bool:
    # a Host header name: *.localhost resolves to loopback in browsers (RFC 6761)
    return name.endswith(".localhost") or is_loopback(name)


class RequestOrigin:
    """The Host/Origin policy of one collector."""

    def __init__(self, *, loopback: bool, allowed_hosts: Iterable[str] = (),
                 allowed_origins: Iterable[str] = ()) -> None:
        self._loopback = loopback
        hosts = {_host_name(host) for host in allowed_hosts if host.strip()}
        self._any_host = "*" in hosts or (not loopback and not hosts)
        self._hosts = hosts
        self._origins = {origin.strip().lower().rstrip("/") for origin in allowed_origins}

    def refusal(self, host: bytes | None, origin: bytes | None,
                fetch_site: bytes | None) -> str | None:
        """Why this request is refused, or None when it may go on."""
        if not self._any_host:
            name = _host_name(host.decode("latin-1")) if host else ""
            if not name:
                return "a Host header is required"
            if name not in self._hosts and not (self._loopback and _is_loopback_name(name)):
                return f"host {name[:100]!r} is not this collector (see --allow-host)"
        if origin is not None:
            text = origin.decode("latin-1").strip().lower().rstrip("/")
            if text not in self._origins:
                return f"requests from web pages ({text[:100]!r}) are not allowed"
        elif fetch_site is not None and fetch_site.strip().lower() in (b"cross-site",
                                                                      b"same-site"):
            return "cross-site requests from web pages are not allowed"
        return None

