"""`python -m cdrfetch` runs the CLI."""

from cdrfetch.cli import main

main()
