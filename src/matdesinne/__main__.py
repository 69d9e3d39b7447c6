"""``python -m matdesinne`` runs the command line."""

import sys

from matdesinne.cli import main

sys.exit(main())
