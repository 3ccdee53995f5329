import sys

from larq_bamsprod.harness.cli import main

sys.exit(main())
