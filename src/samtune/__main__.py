import sys

from samtune.cli.main import main

sys.exit(main())
