"""The ``matdesinne`` entry point: parse, dispatch to a command module, report failures.

Every user mistake ends as one line on stderr and exit code 2, before any output file is
touched; Ctrl-C at any moment ends as one line and exit code 130. Importing this module
is cheap (no NumPy, no PyTorch), so even a Ctrl-C during start-up is caught.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import sys
import threading
from typing import Sequence

from matdesinne import __version__
from matdesinne.errors import UserInputError

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

#: The command modules, in the order ``--help`` lists them.
COMMANDS = ("space", "sample", "label", "train", "design", "predict", "benchmark", "analyze", "structures", "validate",
            "calibrate", "loop")

#: The commands that may write into a built-in material's folder: they make what it ships.
MAKERS = ("train", "calibrate")
#: The argument names that hold a command's output files or folders.
OUTPUTS = ("out", "summary")

#: Seconds the watchdog gives the main thread to stop by itself after Ctrl-C. Compiled code
#: (a JIT compiler, a BLAS call, a DFT step) can hold the interpreter for minutes.
INTERRUPT_GRACE = 10.0
_WAKEUP: tuple[socket.socket, socket.socket] | None = None


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error in one line (no usage block) as a UserInputError."""

    def error(self, message: str):
        raise UserInputError(f"{self.prog}: {message} (see --help)")


def _module(name: str):
    import importlib

    # "validate" and "calibrate" share the DFT module.
    return importlib.import_module(f"matdesinne.cli.{'dft' if name in ('validate', 'calibrate') else name}")


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The root parser and each command's own parser, by command name."""
    parser = _Parser(prog="matdesinne", description="Inverse materials design with invertible neural networks.")
    parser.add_argument("--version", action="version", version=f"matdesinne {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    commands = {name: _module(name).add_parser(sub, name) for name in COMMANDS}
    return parser, commands


def as_flags(message: str, parser: argparse.ArgumentParser) -> str:
    """Rewrite a library message's ``name=value`` mentions of arguments as ``parser``'s flags."""
    for action in parser._actions:
        flags = [o for o in action.option_strings if o.startswith("--")]
        if not flags or action.dest in ("help", "version"):
            continue
        dest, flag = re.escape(action.dest), flags[0]
        if action.nargs == 0:  # a switch: "force=True" is the flag alone
            message = re.sub(rf"(?<![\w-]){dest}=True\b", flag, message)
        message = re.sub(rf"(?<![\w-]){dest}=(?=[\s,;.)]|$)", flag, message)
        message = re.sub(rf"(?<![\w-]){dest}=", flag + " ", message)
    return message


def _watch_interrupts() -> None:
    """Exit 130 on Ctrl-C even while compiled code holds the interpreter.

    Python runs its SIGINT handler only between bytecodes; the wake-up fd is written at
    once, so this thread sees the signal, waits :data:`INTERRUPT_GRACE` seconds for the
    main thread to stop cleanly, then removes temporary files and exits.
    """
    from matdesinne.io import remove_temporaries

    global _WAKEUP
    reader, writer = _WAKEUP = socket.socketpair()  # kept alive for the process's life
    writer.setblocking(False)
    signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)

    def watch() -> None:
        seen = 0
        while True:
            data = reader.recv(64)
            seen += data.count(bytes([signal.SIGINT]))
            if not seen:
                continue
            if seen == 1:
                reader.settimeout(INTERRUPT_GRACE)
                try:
                    seen += reader.recv(64).count(bytes([signal.SIGINT]))
                except TimeoutError:
                    pass
            remove_temporaries()
            print("matdesinne: interrupted", file=sys.stderr, flush=True)
            os._exit(EXIT_INTERRUPTED)

    threading.Thread(target=watch, name="matdesinne-interrupt", daemon=True).start()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (0 ok, 2 user error, 130 interrupted).

    ``argv=None`` reads ``sys.argv`` and also guards against a Ctrl-C that compiled code
    would otherwise hold up.
    """
    commands: dict[str, argparse.ArgumentParser] = {}
    args = None
    try:
        if argv is None and threading.current_thread() is threading.main_thread():
            _watch_interrupts()
        parser, commands = build_parser()
        args = parser.parse_args(argv)
        if args.command not in MAKERS:
            from matdesinne.materials.registry import check_not_shipped

            check_not_shipped({f"--{name}": getattr(args, name, None) for name in OUTPUTS})
        _module(args.command).run(args)
    except UserInputError as err:
        message = str(err)
        if args is not None:
            message = as_flags(message, commands[args.command])
        print(f"matdesinne: error: {message}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        hint = getattr(_module(args.command), "INTERRUPTED", "") if args is not None else ""
        print("matdesinne: interrupted" + (f"; {hint}" if hint else ""), file=sys.stderr)
        return EXIT_INTERRUPTED
    return 0
