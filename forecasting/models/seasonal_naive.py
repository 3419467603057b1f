"""Seasonal naive: each slot gets the orders of the same local slot one week earlier, which
over a multi-week horizon repeats the last observed week: a weekly profile of one week. Like the
profile, it skips public holidays: a slot whose last week fell on one takes the week before."""
from __future__ import annotations

from forecasting.models.weekly_profile import WeeklyProfile


class SeasonalNaive(WeeklyProfile):
    name = "seasonal_naive"

    def __init__(self, weeks: int = 1) -> None:
        super().__init__(weeks)
