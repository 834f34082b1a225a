"""The export bundle's reports: ``report.html`` (Jinja2), ``report.pdf`` (that HTML
printed by the Chromium captures use) and the draft FRE 902(13)/902(14) certification."""

from osint_capture.report.render import build_renderer, render_certification, render_html

__all__ = ["build_renderer", "render_certification", "render_html"]
