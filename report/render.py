"""Rendering the report's pages: the Jinja2 templates of ``report/templates`` and the shading of
Dice cells."""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent


def render(template: str, **ctx) -> str:
    """The template ``template`` rendered with ``ctx`` (HTML escaped)."""
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html", "j2"]))
    return env.get_template(template).render(**ctx)


def shade(v: float) -> str:
    """A background for a Dice cell: red (0.5 and below) through yellow to green (1)."""
    t = min(max((v - 0.5) / 0.5, 0.0), 1.0)
    hue = 120 * t**2
    return f"hsl({hue:.0f}, 70%, 88%)"
