"""Drill reports: terminal summary, report folder files, HTML with SVG plots, baselines."""

from __future__ import annotations
