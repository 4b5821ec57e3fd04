"""``airline-report``: the users' review of the warehouse as one self-contained HTML file.

The page holds the user's two dashboards (inventory trend with the discount on a second axis,
and booking pressure as departure approaches, colour by flight), the promotion outcomes (what
each promotion's explanation forecast without it, against what the flight then sold) and a
searchable table of every decision with its reason and inputs. Charts are inline SVG (and, with
a browser, PNG files beside the page); the only script filters the decision table, and the
page references nothing outside itself.

The counterfactual of a promotion is the engine's own: the forecast of the cabin's demand to
departure at the undiscounted price recorded in the decision (``forecast_demand`` with its
90 % interval). Its outcome is the seats that cabin then sold from the decision on (cancelled
passengers excluded). Decisions without an explanation (older events, the pace rules) have no
counterfactual and are listed without one.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from html import escape
from pathlib import Path
from typing import Any

from airline_charts import page, svg
from psycopg2.extensions import connection as Connection

from airline_review.warehouse import rows

#: ``render_png(svg_file, png_file, width, height)``: a chart as a PNG (the headless browser).
PngRenderer = Callable[[Path, Path, int, int], None]

_FLIGHTS = """
SELECT f.flight_id, f.route, f.scheduled_departure_time, f.status, f.total_seats,
       count(p.promo_time) AS promotions
FROM dim_flight f LEFT JOIN v_promotion_annotations p USING (flight_id)
WHERE (%(routes)s = '{}' OR f.route = ANY(%(routes)s))
GROUP BY f.flight_id, f.route, f.scheduled_departure_time, f.status, f.total_seats
ORDER BY count(p.promo_time) DESC, f.scheduled_departure_time, f.flight_id"""
_TREND = """
SELECT flight_id, metric_time, seats_remaining, active_discount_percentage
FROM v_inventory_trend WHERE flight_id = ANY(%(flights)s) ORDER BY flight_id, metric_time"""
_PRESSURE = """
SELECT flight_id, minutes_to_departure, load_factor
FROM v_booking_pressure WHERE flight_id = ANY(%(flights)s)
ORDER BY flight_id, minutes_to_departure DESC"""
# One row per promotion triggered: its explanation and what the flight sold afterwards in the
# target bucket's cabin (the cabin its bookings in that bucket were in).
_OUTCOMES = """
SELECT a.flight_id, f.route, a.promo_id, a.promo_time, a.end_time, a.end_reason, a.tier,
       a.discount_percentage, a.target_fare_bucket, a.decision_source, a.reason,
       a.forecast_demand, a.forecast_low, a.forecast_high, a.expected_spoilage,
       a.response_elasticity, a.response_evidence, a.expected_revenue_with,
       a.expected_revenue_without, o.final_load_factor, o.revenue,
       (SELECT count(*) FROM fact_booking b
         WHERE b.flight_id = a.flight_id AND b.booking_time >= a.promo_time
           AND b.cancellation_time IS NULL
           AND b.cabin_code = (SELECT c.cabin_code FROM fact_booking c
                                WHERE c.flight_id = a.flight_id
                                  AND c.fare_bucket = a.target_fare_bucket LIMIT 1)
       ) AS seats_sold_after,
       (SELECT count(*) FROM fact_booking b
         WHERE b.promo_id = a.promo_id AND b.flight_id = a.flight_id) AS seats_on_promotion
FROM v_promotion_annotations a
LEFT JOIN dim_flight f USING (flight_id)
LEFT JOIN fact_flight_outcome o USING (flight_id)
WHERE (%(routes)s = '{}' OR f.route = ANY(%(routes)s))
ORDER BY a.promo_time, a.flight_id"""
# Every decision: each trigger, and each end the engine published.
_DECISIONS = """
SELECT p.promo_time AS decided_at, 'triggered' AS decision, p.flight_id, f.route, p.promo_id,
       p.tier, p.discount_percentage, p.reason, p.decision_source, p.current_load_factor,
       p.minutes_to_departure, p.forecast_demand, p.forecast_low, p.forecast_high,
       p.expected_spoilage, p.response_elasticity, p.response_evidence,
       p.expected_revenue_with, p.expected_revenue_without
FROM fact_promotions p LEFT JOIN dim_flight f USING (flight_id)
WHERE (%(routes)s = '{}' OR f.route = ANY(%(routes)s))
UNION ALL
SELECT e.end_time, 'ended', e.flight_id, f.route, e.promo_id, NULL, NULL, e.end_reason,
       e.decision_source, NULL, NULL, e.forecast_demand, e.forecast_low, e.forecast_high,
       e.expected_spoilage, e.response_elasticity, e.response_evidence,
       e.expected_revenue_with, e.expected_revenue_without
FROM fact_promotion_end e LEFT JOIN dim_flight f USING (flight_id)
WHERE (%(routes)s = '{}' OR f.route = ANY(%(routes)s))
ORDER BY 1, 3"""


@dataclass
class Review:
    """What the report shows, read from the warehouse."""

    flights: list[dict[str, Any]]  # every flight of the routes asked for, promoted first
    drawn: list[str]  # the flights the dashboard charts draw
    trend: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    pressure: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    outcomes: list[dict[str, Any]] = field(default_factory=list)
    decisions: list[dict[str, Any]] = field(default_factory=list)


def read(conn: Connection, routes: Sequence[str], max_flights: int) -> Review:
    """The review of the flights on ``routes`` (all when empty); the charts draw at most
    ``max_flights`` of them, those with the most promotions first."""
    params: dict[str, Any] = {"routes": list(routes)}
    flights = rows(conn, _FLIGHTS, params)
    review = Review(flights, [f["flight_id"] for f in flights[:max_flights]])
    params["flights"] = review.drawn
    for target, query in ((review.trend, _TREND), (review.pressure, _PRESSURE)):
        for row in rows(conn, query, params):
            target.setdefault(row["flight_id"], []).append(row)
    review.outcomes = rows(conn, _OUTCOMES, params)
    review.decisions = rows(conn, _DECISIONS, params)
    return review


# --------------------------------------------------------------------------- charts
def _epoch(t: datetime) -> float:
    return t.timestamp()


def _time_label(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%b %d")


def _day_ticks(times: Sequence[float], most: int = 8) -> list[float]:
    """UTC midnights from the first to the last of ``times``, every n days so at most
    ``most`` are labelled."""
    if not times:
        return []
    day = 86_400
    first, last = math.floor(min(times) / day), math.ceil(max(times) / day)
    step = max(1, math.ceil((last - first) / most))
    return [d * day for d in range(first, last + 1, step)]


def _num(value: Any) -> float | None:
    return None if value is None else float(value)


def charts(review: Review) -> dict[str, str]:
    """The report's charts by file stem: SVG text."""
    empty = "" if review.drawn else "no flights in the warehouse"
    times = [_epoch(r["metric_time"]) for fid in review.drawn for r in review.trend.get(fid, [])]
    trend = svg.xy_lines(
        [(fid, [(_epoch(r["metric_time"]), r["seats_remaining"])
                for r in review.trend.get(fid, [])]) for fid in review.drawn],
        "Inventory trend with promotion annotations", "metric time (UTC)", "seats remaining",
        x_format=_time_label, x_ticks=_day_ticks(times),
        right=[(fid, [(_epoch(r["metric_time"]), r["active_discount_percentage"] or 0)
                      for r in review.trend.get(fid, [])]) for fid in review.drawn],
        right_label="discount (%, dashed)", right_format=lambda v: f"{v:g} %",
        note=empty)
    pressure = svg.xy_lines(
        [(fid, [(r["minutes_to_departure"] / 1440, float(r["load_factor"]) * 100)
                for r in review.pressure.get(fid, [])]) for fid in review.drawn],
        "Booking pressure as departure approaches", "days to departure",
        "load factor (%)", reverse_x=True, y_format=lambda v: f"{v:g} %", note=empty)
    explained = [o for o in review.outcomes if o["forecast_demand"] is not None][:30]
    outcomes = svg.error_bars(
        [(f"{o['flight_id']} {o['discount_percentage']} %",
          o["seats_sold_after"] - float(o["forecast_demand"]),
          (o["seats_sold_after"] - float(o["forecast_high"]),
           o["seats_sold_after"] - float(o["forecast_low"]))) for o in explained],
        "Promotion outcomes: seats sold after the decision minus the forecast without it",
        unit="seats")
    return {"inventory_trend": trend, "booking_pressure": pressure,
            "promotion_outcomes": outcomes}


# --------------------------------------------------------------------------- page
def _text(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M")
    if isinstance(value, Decimal | float):
        return f"{value:,.3f}".rstrip("0").rstrip(".")
    return str(value)


def _interval(row: dict[str, Any]) -> str:
    if row["forecast_demand"] is None:
        return "-"
    return (f"{_text(row['forecast_demand'])} [{_text(row['forecast_low'])}, "
            f"{_text(row['forecast_high'])}]")


def _uplift(row: dict[str, Any]) -> str:
    if row["expected_revenue_with"] is None or row["expected_revenue_without"] is None:
        return "-"
    return f"{row['expected_revenue_with'] - row['expected_revenue_without']:+,.2f}"


OUTCOME_HEAD = ["flight", "route", "triggered", "ended", "discount", "reason",
                "forecast without (seats) [90 %]", "sold after", "sold on promotion",
                "expected revenue with - without", "final load factor", "flight revenue"]
DECISION_HEAD = ["time", "decision", "flight", "route", "promotion", "tier", "discount",
                 "reason", "source", "load factor", "minutes out", "forecast [90 %]",
                 "spoilage", "elasticity", "evidence", "expected revenue with", "without"]


def _outcome_row(o: dict[str, Any]) -> list[str]:
    return [o["flight_id"], _text(o["route"]), _text(o["promo_time"]),
            f"{_text(o['end_time'])} ({o['end_reason']})" if o["end_time"] else "live",
            f"{o['discount_percentage']} % on {o['target_fare_bucket']}", o["reason"],
            _interval(o), _text(o["seats_sold_after"]), _text(o["seats_on_promotion"]),
            _uplift(o), _text(o["final_load_factor"]), _text(o["revenue"])]


def _decision_row(d: dict[str, Any]) -> list[str]:
    discount = "-" if d["discount_percentage"] is None else f"{d['discount_percentage']} %"
    return [_text(d["decided_at"]), d["decision"], d["flight_id"], _text(d["route"]),
            _text(d["promo_id"]), _text(d["tier"]), discount, _text(d["reason"]),
            d["decision_source"], _text(d["current_load_factor"]),
            _text(d["minutes_to_departure"]), _interval(d), _text(d["expected_spoilage"]),
            _text(d["response_elasticity"]), _text(d["response_evidence"]),
            _text(d["expected_revenue_with"]), _text(d["expected_revenue_without"])]


#: Filters the decision table by the search box; the box starts from the page's ``#q=`` so a
#: filtered view can be linked. Every row stays in the page: nothing is fetched.
_SEARCH = """
(function () {
  var box = document.getElementById("search");
  var rows = document.querySelectorAll("#decisions tbody tr");
  var shown = document.getElementById("shown");
  function apply() {
    var words = box.value.toLowerCase().split(/\\s+/).filter(Boolean);
    var n = 0;
    rows.forEach(function (row) {
      var text = row.textContent.toLowerCase();
      var match = words.every(function (w) { return text.indexOf(w) >= 0; });
      row.hidden = !match;
      if (match) { n += 1; }
    });
    shown.textContent = n + " of " + rows.length + " decisions";
  }
  var hash = /^#q=(.*)$/.exec(window.location.hash);
  if (hash) { box.value = decodeURIComponent(hash[1]); }
  box.addEventListener("input", apply);
  apply();
})();
"""


def html(review: Review, chart_svgs: dict[str, str], routes: Sequence[str],
         generated: datetime) -> str:
    """The report page: self-contained, its one script the decision search."""
    promoted = sum(1 for f in review.flights if f["promotions"])
    scope = ", ".join(routes) if routes else "all routes"
    explained = sum(1 for o in review.outcomes if o["forecast_demand"] is not None)
    out = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        "<title>airline_dw: inventory and promotion review</title>",
        f"<style>{page.STYLE}#search{{width:30em;padding:4px}}"
        "td{white-space:nowrap}.wide{overflow-x:auto}</style></head><body>",
        "<h1>Inventory and promotion review</h1>",
        f"<p>{len(review.flights)} flights on {escape(scope)}, {promoted} with promotions; "
        f"{len(review.outcomes)} promotions, {len(review.decisions)} decisions. The charts draw "
        f"{len(review.drawn)} flights, those with the most promotions first. Generated "
        f"{generated:%Y-%m-%d %H:%M} UTC from the warehouse.</p>",
        "<h2>Inventory trend with promotion annotations</h2>",
        "<p>Seats remaining (solid, left axis) and the active discount (dashed, right axis) "
        "over metric time, one colour per flight.</p>", chart_svgs["inventory_trend"],
        "<h2>Booking pressure as departure approaches</h2>",
        "<p>Load factor against days to departure (counting down to the right), one colour per "
        "flight.</p>", chart_svgs["booking_pressure"],
        "<h2>Promotion outcomes</h2>",
        f"<p>Each promotion's counterfactual is the engine's forecast of the cabin's demand to "
        f"departure without the discount, recorded with the decision ({explained} of "
        f"{len(review.outcomes)} promotions carry one); the outcome is the seats that cabin "
        "then sold. A point right of zero: the flight sold more than forecast without the "
        "promotion; the bar is the forecast's 90 % interval.</p>",
        chart_svgs["promotion_outcomes"],
        '<div class="wide">', page.table(OUTCOME_HEAD, [_outcome_row(o) for o in review.outcomes],
                                         'id="outcomes"'), "</div>",
        "<h2>Decisions</h2>",
        '<p><input id="search" type="search" placeholder="filter: flight, route, reason, ..." '
        'aria-label="filter the decisions"> <span id="shown"></span></p>',
        '<div class="wide">', page.table(DECISION_HEAD,
                                         [_decision_row(d) for d in review.decisions],
                                         'id="decisions"'), "</div>",
        f"<script>{_SEARCH}</script>", "</body></html>"]
    return "\n".join(out) + "\n"


def write(review: Review, out_dir: Path, routes: Sequence[str],
          render_png: PngRenderer | None = None, generated: datetime | None = None
          ) -> list[Path]:
    """Write ``report.html`` and each chart as ``.svg`` (and ``.png`` with ``render_png``) into
    ``out_dir``; the files written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    chart_svgs = charts(review)
    written = []
    for stem, text in chart_svgs.items():
        path = out_dir / f"{stem}.svg"
        path.write_text(svg.standalone(text))
        written.append(path)
        if render_png is not None:
            width, height = _size(text)
            render_png(path, path.with_suffix(".png"), width, height)
            written.append(path.with_suffix(".png"))
    page_path = out_dir / "report.html"
    page_path.write_text(html(review, chart_svgs, routes, generated or datetime.now(UTC)))
    written.append(page_path)
    return written


def _size(svg_text: str) -> tuple[int, int]:
    """(width, height) of an ``<svg>`` from this package's charts."""
    head = svg_text.split(">", 1)[0]
    attrs = dict(part.split("=", 1) for part in head.split() if "=" in part)
    return int(attrs["width"].strip('"')), int(attrs["height"].strip('"'))
