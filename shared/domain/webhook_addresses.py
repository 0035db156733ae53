"""Where a webhook may point (security review M1, SSRF): a public https:// address only; and what of it is
shown (M2): its host (`public_targets`).

Checked twice: when a target is created (`url_problem`: the scheme, a literal IP, a known internal name)
and when it is sent (`address_problem` on every address the host resolves to at that moment, so a name
that resolves to a public address at create time and to 10.x later, DNS rebinding, is refused too;
shared/adapters/notify_targets.py then connects to the address it checked).

Refused: loopback, link-local (169.254.0.0/16 with the metadata server 169.254.169.254, fe80::/10),
private (RFC 1918, fc00::/7 with AWS's fd00:ec2::254, CGNAT 100.64.0.0/10), unspecified, multicast,
and anything else the IANA special-purpose registries mark not globally reachable (`is_global`,
https://docs.python.org/3/library/ipaddress.html#ipaddress.IPv4Address.is_global) — IPv4 inside IPv6
(::ffff:a.b.c.d, 6to4) is judged by the IPv4 address it carries. The local twin's receivers listen on
loopback over http, so `allow_loopback` (TRAINYARD_NOTIFY_LOCAL_RECEIVERS, never in the cloud) admits
exactly that and nothing else.
"""
from __future__ import annotations

import ipaddress
from typing import Optional
from urllib.parse import urlsplit

# The metadata server's names (https://cloud.google.com/compute/docs/metadata/querying-metadata) and the
# names that only ever mean "this machine" or "this private network".
INTERNAL_NAMES = frozenset({"metadata.google.internal", "metadata.google.internal.", "metadata", "localhost"})
INTERNAL_SUFFIXES = (".internal", ".local", ".localhost", ".localdomain", ".home.arpa", ".internal.",
                     ".local.", ".localhost.")
METADATA_ADDRESSES = frozenset({ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")})
CGNAT = ipaddress.ip_network("100.64.0.0/10")


def _embedded_v4(ip):
    if ip.version == 6:
        return ip.ipv4_mapped or ip.sixtofour
    return None


def address_problem(address: str, allow_loopback: bool = False) -> Optional[str]:
    """Why a webhook may not reach this IP address, or None when it may."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])  # an IPv6 zone (fe80::1%eth0) names a local link
    except ValueError:
        return f"{address!r} is not an IP address"
    inner = _embedded_v4(ip)
    if inner is not None:
        return address_problem(str(inner), allow_loopback)
    if ip in METADATA_ADDRESSES:
        return f"{ip} is the metadata server"
    if ip.is_loopback:
        return None if allow_loopback else f"{ip} is a loopback address"
    for kind, test in (("unspecified", ip.is_unspecified), ("link-local", ip.is_link_local),
                       ("multicast", ip.is_multicast), ("private", ip.is_private),
                       ("shared (CGNAT)", ip.version == 4 and ip in CGNAT)):
        if test:
            return f"{ip} is a {kind} address"
    if not ip.is_global:
        return f"{ip} is not a public address"
    return None


def host_problem(host: str, allow_loopback: bool = False) -> Optional[str]:
    """Why a webhook may not name this host (a literal IP in a refused range, or an internal name)."""
    host = host.strip("[]").lower()
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        pass
    else:
        return address_problem(host, allow_loopback)
    if host in INTERNAL_NAMES or host.endswith(INTERNAL_SUFFIXES):
        if allow_loopback and host in ("localhost", "localhost."):
            return None
        return f"{host} is an internal name"
    if "." not in host.rstrip("."):
        return f"{host} is not a fully qualified public name"
    return None


def host_of(url: str) -> str:
    """A webhook's host (with its port when one is given): what is shown and logged, never the path,
    which may be the credential (Slack's is)."""
    try:
        return urlsplit(url).netloc.rsplit("@", 1)[-1] or "?"
    except ValueError:
        return "?"


def url_problem(url: str, allow_loopback: bool = False) -> Optional[str]:
    """Why this webhook URL is refused when a target is created, or None."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 — raises on a port that is not a number
    except ValueError:
        return "must be an https:// URL"
    if parts.scheme != "https" and not (allow_loopback and parts.scheme == "http"):
        return "must be an https:// URL"
    if not parts.hostname:
        return "must name a host"
    if parts.username or parts.password:
        return "must not carry a user or password before the host"
    return host_problem(parts.hostname, allow_loopback)


def public_targets(raw: Optional[dict]) -> Optional[dict]:
    """A run's or schedule's notifications as anyone may see them: each webhook's host (and signing
    secret's name), never its URL, whose path may be the credential (Slack's is), nor the URL's reference
    in the secret store."""
    if not raw:
        return raw
    hooks = [{"host": hook.get("host") or host_of(hook.get("url") or ""), "secret": hook.get("secret")}
             for hook in raw.get("webhooks") or []]
    return {**raw, "webhooks": hooks}
