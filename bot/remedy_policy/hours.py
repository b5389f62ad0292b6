"""Agents' working hours (bot/handoff.yml): what a customer handed to a person is told.

Within hours: a person usually replies within `usual_wait_minutes`. Outside: from the next
opening time (named as a day and a time), so nobody waits for a reply that cannot come.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Optional, Tuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from bot.remedy_policy.loader import PolicyError, _Reader, compose_yaml

DEFAULT_PATH = Path(__file__).resolve().parents[1] / "handoff.yml"
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class EscalationLimits:
    """How many misses the bot allows itself before a person takes over (`escalation:`)."""

    misunderstood_answers: int = 2  # answers to the same question of the claim form
    unclear_turns: int = 2  # messages in a row with no reading at all
    identity_failures: int = 3  # wrong phone/shop answers of an unknown customer


@dataclass(frozen=True)
class HandoffHours:
    timezone: ZoneInfo
    open: time
    close: time
    days: Tuple[str, ...]
    usual_wait_minutes: int
    escalation: EscalationLimits = EscalationLimits()

    def is_open(self, now: datetime) -> bool:
        local = now.astimezone(self.timezone)
        return DAYS[local.weekday()] in self.days and self.open <= local.time() < self.close

    def next_opening(self, now: datetime) -> datetime:
        """The next time agents start work after `now` (local time zone)."""
        local = now.astimezone(self.timezone)
        for ahead in range(8):
            day = (local + timedelta(days=ahead)).date()
            start = datetime.combine(day, self.open, tzinfo=self.timezone)
            if start > local and DAYS[day.weekday()] in self.days:
                return start
        raise PolicyError("handoff.yml: no working day in `hours.days`")  # unreachable: validated


def load_hours(path: Optional[os.PathLike] = None) -> HandoffHours:
    path = Path(path or os.environ.get("HANDOFF_HOURS_PATH") or DEFAULT_PATH)
    return parse_hours(path.read_text(encoding="utf-8"), path.name)


def parse_hours(text: str, source: str = "handoff.yml") -> HandoffHours:
    root = compose_yaml(text, source)
    r = _Reader(source)
    top = r.mapping(root, "")
    r.no_unknown(top, "", ("version", "timezone", "hours", "usual_wait_minutes", "escalation"))
    zone_node = r.required(top, root, "", "timezone")
    try:
        zone = ZoneInfo(str(r.scalar(zone_node, "timezone")))
    except (ZoneInfoNotFoundError, ValueError):
        raise r.fail(zone_node, "timezone", "unknown time zone (e.g. Asia/Tokyo)") from None
    hours_node = r.required(top, root, "", "hours")
    hours = r.mapping(hours_node, "hours")
    r.no_unknown(hours, "hours", ("open", "close", "days"))
    opening = read_clock(r, r.required(hours, hours_node, "hours", "open"), "hours.open")
    closing = read_clock(r, r.required(hours, hours_node, "hours", "close"), "hours.close")
    if closing <= opening:
        raise r.fail(hours_node, "hours", "`close` must be after `open`")
    days = r.string_list(r.required(hours, hours_node, "hours", "days"), "hours.days", DAYS)
    if not days:
        raise r.fail(hours_node, "hours.days", "name at least one day")
    wait = r.integer(r.required(top, root, "", "usual_wait_minutes"), "usual_wait_minutes", minimum=1)
    limits = EscalationLimits()
    if "escalation" in top:
        given = r.mapping(top["escalation"][1], "escalation")
        names = ("misunderstood_answers", "unclear_turns", "identity_failures")
        r.no_unknown(given, "escalation", names)
        limits = EscalationLimits(
            **{name: r.integer(given[name][1], f"escalation.{name}", minimum=1) for name in names if name in given}
        )
    return HandoffHours(zone, opening, closing, days, wait, limits)


def read_clock(r: _Reader, node: yaml.Node, path: str) -> time:
    """A time of day from an owner's YAML file ("10:00"), or an error naming the line."""
    value = r.scalar(node, path)
    if isinstance(value, int):  # YAML 1.1 reads 10:00 unquoted as sexagesimal 600
        value = f"{value // 60:02d}:{value % 60:02d}"
    try:
        return time.fromisoformat(str(value))
    except ValueError:
        raise r.fail(node, path, f'expected a time like "10:00", got {value!r}') from None


__all__ = ["EscalationLimits", "HandoffHours", "load_hours", "parse_hours"]
