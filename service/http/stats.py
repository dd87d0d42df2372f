"""Admin API: the dashboard's figures as JSON (``GET /admin/stats``), for scripts; the
console's Dashboard page shows the same (:mod:`service.http.console.dashboard`).

Reads are not audited: they hold counts, no person's data, and a script may poll them.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, request
from marshmallow import ValidationError, fields, validate

from service.http import schemas
from service.http.auth import admin_required
from service.http.context import services
from service.stats import WINDOWS

bp = Blueprint("stats", __name__, url_prefix="/admin")


class StatsQuery(schemas.StrictSchema):
    window = fields.String(load_default="day", validate=validate.OneOf(list(WINDOWS)))


STATS_QUERY = StatsQuery()


def window_of(args) -> str:
    """The ``window`` query parameter (hour, day or week; day when absent), or a 400."""
    try:
        return STATS_QUERY.load(args.to_dict())["window"]
    except ValidationError as e:
        raise schemas.ValidationFailed("Some query parameters are invalid.",
                                       errors=e.messages) from None


def figures(window: str) -> dict[str, Any]:
    return services().stats.reader.read(window)


@bp.get("/stats")
@admin_required
def stats():
    """Sends, approvals, conversion, deliveries, breakers and credits over a window."""
    window = window_of(request.args)
    services().admin.credits.refresh_if_stale()  # a reading for the trend, ≤ 1 per 5 min
    return jsonify(figures(window))
