"""HTML reports of what an ensemble did: leaderboard, per-class Dice heatmap and spread,
worst images, settings summary, and an image browser with overlays (``build_report``,
returning a ``ReportResult``)."""

from report.build import ReportResult, build_report

__all__ = ["ReportResult", "build_report"]
