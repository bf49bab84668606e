"""``python -m scada`` runs the CLI (same as the ``scada`` console script)."""

from scada.cli import main

main()
