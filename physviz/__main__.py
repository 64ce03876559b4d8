"""`python -m physviz` runs the `physviz` command."""
import sys

from physviz.cli import main

sys.exit(main())
