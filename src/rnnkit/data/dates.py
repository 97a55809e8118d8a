"""A synthetic translation task for demos and tests: dates in many human formats -> ISO ``YYYY-MM-DD``.

::

    "Tuesday, 3rd of March 2015"  -> "2015-03-03"
    "03/03/15"                    -> "2015-03-03"
    "march 3 2015"                -> "2015-03-03"

Dates are drawn uniformly from 1950-01-01 to 2049-12-31, so a two-digit year ``yy`` means 19yy for yy >= 50 and
20yy below. Numeric formats put the day before the month (``03/04/15`` is the 3rd of April), so every source has
exactly one answer. Everything comes from ``random.Random(seed)``: the same seed gives the same pairs, with no
network and no files.
"""
from __future__ import annotations

import datetime as dt
import random

__all__ = ["FORMATS", "format_date", "generate_dates", "dates_splits"]

_MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December"]
_DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
_START = dt.date(1950, 1, 1)
_SPAN = (dt.date(2049, 12, 31) - _START).days + 1


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _fields(d: dt.date) -> dict:
    month, day = _MONTHS[d.month - 1], _DAYS[d.weekday()]
    return dict(d=d.day, dd=f"{d.day:02d}", m=d.month, mm=f"{d.month:02d}", y=d.year, yy=f"{d.year % 100:02d}",
                Month=month, month=month.lower(), Mon=month[:3], mon=month[:3].lower(), MONTH=month.upper(),
                Day=day, day=day.lower(), Dy=day[:3], DAY=day.upper(), th=_ordinal(d.day))


#: ``str.format`` templates over the fields of :func:`_fields`; each names the day, the month and the year.
FORMATS = (
    "{Day}, {th} of {Month} {y}",       # Tuesday, 3rd of March 2015
    "{dd}/{mm}/{yy}",                   # 03/03/15
    "{month} {d} {y}",                  # march 3 2015
    "{d} {Mon} {y}",                    # 3 Mar 2015
    "{Mon} {d}, {y}",                   # Mar 3, 2015
    "{d}.{m}.{y}",                      # 3.3.2015
    "{y}/{mm}/{dd}",                    # 2015/03/03
    "{DAY} {MONTH} {d} {y}",            # TUESDAY MARCH 3 2015
    "{day} {d} {month} {y}",            # tuesday 3 march 2015
    "the {th} of {month}, {y}",         # the 3rd of march, 2015
    "{dd}-{mm}-{y}",                    # 03-03-2015
    "{Month} {th}, {y}",                # March 3rd, 2015
    "{d} {month} '{yy}",                # 3 march '15
    "{Dy} {d} {Mon} {y}",               # Tue 3 Mar 2015
    "{dd}.{mm}.{yy}",                   # 03.03.15
    "{d}/{m}/{y}",                      # 3/3/2015
    "{mon} {th} {y}",                   # mar 3rd 2015
    "{Day} {d} {Month} {y}",            # Tuesday 3 March 2015
)


def format_date(date: dt.date, template: str) -> str:
    """``date`` written with one of :data:`FORMATS` (or any template over the same fields)."""
    return template.format(**_fields(date))


def generate_dates(n: int, seed: int = 0) -> list[tuple[str, str]]:
    """``n`` pairs ``(human-written date, ISO date)``, a uniformly random date and format each."""
    rng = random.Random(seed)
    pairs = []
    for _ in range(n):
        date = _START + dt.timedelta(days=rng.randrange(_SPAN))
        pairs.append((format_date(date, rng.choice(FORMATS)), date.isoformat()))
    return pairs


def dates_splits(train: int = 20000, valid: int = 1000, test: int = 2000, seed: int = 0
                 ) -> tuple[list[tuple[str, str]], list[tuple[str, str]], list[tuple[str, str]]]:
    """Disjoint train / validation / held-out test pairs: no source string of one split occurs in another."""
    pool = generate_dates(2 * (train + valid + test) + 100, seed)
    seen: set[str] = set()
    unique = []
    for pair in pool:
        if pair[0] not in seen:
            seen.add(pair[0])
            unique.append(pair)
    if len(unique) < train + valid + test:
        raise ValueError(f"only {len(unique)} distinct dates for {train + valid + test} requested")
    test_pairs = unique[:test]
    valid_pairs = unique[test:test + valid]
    train_pairs = unique[test + valid:test + valid + train]
    return train_pairs, valid_pairs, test_pairs
