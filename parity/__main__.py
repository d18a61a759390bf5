import sys

from .cli import main

if __name__ == "__main__":  # worker processes (-j N) import this module under another name
    sys.exit(main())
