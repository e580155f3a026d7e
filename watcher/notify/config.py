"""The ``[notify]`` section: where notifications go and which ones are sent."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from enum import StrEnum
from urllib.parse import urlsplit

from localbackup.configkit import Section
from watcher.notify.events import Category


class UrlStyle(StrEnum):
    """``json``: POST the event to ``url``. ``healthchecks``: ping ``<url>/start``, ``<url>``
    (success), ``<url>/fail`` and ``<url>/log`` (information) with the event as the body."""

    JSON = "json"
    HEALTHCHECKS = "healthchecks"


CHOOSABLE = tuple(c.value for c in Category if c is not Category.START)
DEFAULT_ON = (Category.FAILURE, Category.MISSING, Category.OVER_BUDGET)


@dataclass(frozen=True, slots=True)
class NotifyConfig:
    """Where notifications go (``url`` and/or ``command``) and which categories are sent.

    The URL and the command line may hold secrets (a ping URL is one): they are kept out of
    ``repr`` and every log line shows them masked (:func:`watcher.notify.delivery.mask_url`)."""

    url: str | None = field(default=None, repr=False)
    url_style: UrlStyle = UrlStyle.JSON
    command: tuple[str, ...] = field(default=(), repr=False)
    on: frozenset[Category] = frozenset(DEFAULT_ON)
    retrying_after: float = 6 * 3600.0  # an upload retried this long is notified once
    timeout: float = 10.0  # seconds per delivery attempt

    @property
    def enabled(self) -> bool:
        """Whether anything is sent at all."""
        return bool(self.url or self.command)

    def sends(self, category: Category | None) -> bool:
        """Whether events of ``category`` are sent (starts go with successes)."""
        if category is None or not self.enabled:
            return False
        if category is Category.START:
            return Category.SUCCESS in self.on
        return category in self.on


def notify_config(section: Section) -> NotifyConfig:
    """Read ``[notify]``. With ``url_style = "healthchecks"`` every category is on unless
    ``on`` says otherwise: a ping service needs the successes to know the job is alive."""
    url = section.optional_string("url")
    if url is not None and not re.match(r"^https?://[^/\s]+", url):
        raise section.error("url", "must be an http(s) URL")
    if url is not None:
        _check_url(section, url)
    style = section.enum_choice("url_style", UrlStyle.JSON)
    if style is UrlStyle.HEALTHCHECKS and url is None:
        raise section.error("url_style", '"healthchecks" needs url (the check\'s ping URL)')
    command = _command(section)
    default = CHOOSABLE if style is UrlStyle.HEALTHCHECKS else tuple(c.value for c in DEFAULT_ON)
    on = section.string_list("on", default)
    for i, name in enumerate(on):
        if name not in CHOOSABLE:
            raise section.error(f"on[{i}]", f"must be one of {', '.join(CHOOSABLE)}, got {name!r}")
    cfg = NotifyConfig(
        url=url,
        url_style=style,
        command=command,
        on=frozenset(Category(n) for n in on),
        retrying_after=section.duration("retrying_after", 6 * 3600.0) or 6 * 3600.0,
        timeout=section.duration("timeout", 10.0) or 10.0,
    )
    section.finish()
    return cfg


def _command(section: Section) -> tuple[str, ...]:
    """``command``: an argv list, or one string split with shlex (never run by a shell)."""
    raw = section.peek("command")
    if raw is None:
        section.optional_string("command")
        return ()
    if isinstance(raw, str):
        try:
            argv = tuple(shlex.split(section.string("command", "")))
        except ValueError as exc:
            raise section.error("command", f"cannot be split into arguments: {exc}") from None
    else:
        argv = section.string_list("command")
    if not argv:
        raise section.error("command", "is empty; give the program and its arguments")
    return argv


def _check_url(section: Section, url: str) -> None:
    """A URL that urllib can send as written: ASCII, no spaces, a numeric port, no fragment."""
    if not url.isascii() or any(c.isspace() or ord(c) < 32 for c in url):
        raise section.error(
            "url", "must be ASCII without spaces (percent-encode other characters, e.g. %20)"
        )
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018 - parsing it is the check
    except ValueError:
        raise section.error("url", "has a port that is not a number") from None
    if parts.fragment:
        raise section.error("url", "must not have a #fragment")
