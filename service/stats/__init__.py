"""The dashboard's data: counters kept in Redis at low cost (:mod:`.recorder`), read per
window (:mod:`.reader`). No Flask here."""

from __future__ import annotations

from dataclasses import dataclass

from service.stats.reader import WINDOWS, StatsReader
from service.stats.recorder import StatsRecorder

__all__ = ["WINDOWS", "Stats", "StatsReader", "StatsRecorder", "build"]


@dataclass(frozen=True)
class Stats:
    recorder: StatsRecorder
    reader: StatsReader


def build(redis, events, **reader_options) -> Stats:
    """Counters over ``redis`` that listen to ``events``, and their reader."""
    recorder = StatsRecorder(redis)
    events.subscribe(recorder.on_event)
    return Stats(recorder, StatsReader(redis, recorder=recorder, **reader_options))
