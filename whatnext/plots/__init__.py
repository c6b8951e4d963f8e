"""Figures: ``whatnext plot data|train|eval`` drawn with matplotlib (Agg, headless) from plain results.

Owns ``style`` (the Okabe-Ito palette, figure set-up, smoothing, saving PNG/SVG), ``data`` (history
lengths, popularity, plays over time, features), ``training`` (the metrics.jsonl of one or more runs) and
``evaluation`` (an eval table's models side by side with the seed spread, the accuracy-diversity frontier).
May import numpy, the ground floor and ``whatnext.data`` (statistics); matplotlib only inside these modules
and only when a figure is drawn. Never imports torch, the engine, the CLI, typer or rich: results come in as
plain dicts and arrays.
"""
