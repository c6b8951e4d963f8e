"""The command line: the Typer app (``app``) and its rich rendering (``render``). The only place
that imports typer or rich; every command is a few lines handing keyword arguments to
:mod:`whatnext.engine`.

May import: everything in whatnext. Nothing imports it but ``whatnext.__main__``.
"""

from whatnext.cli.app import app, main

__all__ = ["app", "main"]
