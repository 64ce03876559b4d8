"""`python -m physviz.train CONFIG.yaml [overrides]`."""
import sys

from physviz.train.cli import main

sys.exit(main())
