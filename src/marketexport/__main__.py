"""``python -m marketexport`` runs the command line."""

from .cli import run

run()
