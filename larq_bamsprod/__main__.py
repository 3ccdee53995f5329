import sys

from larq_bamsprod.cli import main

sys.exit(main())
