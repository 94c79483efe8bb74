"""Which alert webhook URLs may be used: asked by the AlertRule model when a rule
is saved or restored, and by notifications before every send."""

from __future__ import annotations

from django.conf import settings

from core.hostcheck import HostNotAllowed, HostUnresolvable, UrlNotAllowed, check_url_allowed


def alert_webhook_url_problem(url: str, *, require_resolvable: bool = True) -> str | None:
    """Why an alert webhook URL may not be used (not http(s), a bad port, an internal host), or None.

    The same check as mailbox hosts and event webhooks (core.hostcheck), run when a rule
    is saved, restored and sent. MONITORING_WEBHOOK_ALLOW_PRIVATE_HOSTS=1 allows internal
    hosts. Without `require_resolvable` a name that does not resolve now passes (a restore
    on a machine without DNS); it is checked again before every send.
    """
    try:
        check_url_allowed(
            url,
            allow_private=settings.MONITORING_WEBHOOK_ALLOW_PRIVATE_HOSTS,
            what="webhook",
            setting="MONITORING_WEBHOOK_ALLOW_PRIVATE_HOSTS",
        )
    except (UrlNotAllowed, HostNotAllowed) as exc:
        return str(exc)
    except HostUnresolvable as exc:
        return str(exc) if require_resolvable else None
    return None
