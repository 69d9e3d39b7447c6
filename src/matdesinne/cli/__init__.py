"""Command line: ``matdesinne train | design | predict``."""

from matdesinne.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
