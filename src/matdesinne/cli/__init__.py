"""Command line: ``matdesinne train | design | predict | benchmark | analyze | structures | validate | calibrate | loop``.

One module per command, each with ``add_parser(subparsers)`` and ``run(args)``; this
package's :func:`main` parses, dispatches, and turns user mistakes into one line and
exit code 2, and Ctrl-C into one line and exit code 130.
"""

from matdesinne.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
