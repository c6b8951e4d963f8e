"""``python -m whatnext``: the same CLI as the ``whatnext`` command."""

from whatnext.cli import main

main()
