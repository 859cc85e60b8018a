"""TLS for every call the harness makes: one setting, one SSLContext recipe, both clients.

Certificates are verified by default on the load path (geventhttpclient, whose
Locust default is *not* to verify) and in the clean-up (httpx) alike, so the key is
never sent to a server that could not prove who it is, and the clean-up can reach
whatever the load reached.  Built with the `ssl` module at call time, so under
Locust's gevent monkey-patching the context is gevent's.
"""

from __future__ import annotations

import functools
import ssl
from dataclasses import dataclass


@dataclass(frozen=True)
class Tls:
    verify: bool = True
    # PEM text of the CA certificates to trust instead of the system's (--ca-bundle);
    # the text, not a path, so remote workers need no copy of the file.
    ca_pem: str | None = None

    def context(self, cafile: str | None = None) -> ssl.SSLContext:
        """One context per setting for the process, shared by every client.

        An SSLContext is safe to share, and loading the system's CA bundle costs
        ~20 ms of CPU, once per user on the load path otherwise.  `cafile` is what
        geventhttpclient offers its factory (certifi's bundle): taken and ignored, so
        that the trust is exactly this setting's (--ca-bundle means that CA alone),
        and the shared context is never loaded with more.
        """
        del cafile
        return _context(self)

    def to_wire(self) -> dict[str, object]:
        return {"verify": self.verify, "ca_pem": self.ca_pem}

    @classmethod
    def from_wire(cls, data: object) -> Tls:
        if not isinstance(data, dict):
            return cls()
        ca = data.get("ca_pem")
        return cls(bool(data.get("verify", True)), ca if isinstance(ca, str) else None)


@functools.cache
def _context(tls: Tls) -> ssl.SSLContext:
    if not tls.verify:
        # --insecure: the user asked for it (a lab proxy, say); no check at all.
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    if tls.ca_pem:
        return ssl.create_default_context(cadata=tls.ca_pem)
    return ssl.create_default_context()


def check_ca_pem(text: str) -> str | None:
    """None when `text` holds usable CA certificates, else why not (one line)."""
    try:
        ssl.create_default_context(cadata=text)
    except (ssl.SSLError, ValueError) as exc:
        return str(exc.args[-1] if exc.args else exc)
    if "BEGIN CERTIFICATE" not in text:
        return "no PEM certificate in it"
    return None


__all__ = ["Tls", "check_ca_pem"]
