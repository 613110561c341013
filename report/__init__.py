"""HTML reports of what an ensemble did: leaderboard, per-class Dice heatmap and spread,
worst images, settings summary, an image browser with overlays, and (``quality=True``) a page
without ground truth (``report.quality_page``) (``build_report``, returning a ``ReportResult``)."""

from report.build import ReportResult, build_report

__all__ = ["ReportResult", "build_report"]
