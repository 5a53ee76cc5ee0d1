"""`python -m codecorpus …` is the `codecorpus` command."""
import sys

from codecorpus.interface.cli import main

if __name__ == "__main__":
    sys.exit(main())
