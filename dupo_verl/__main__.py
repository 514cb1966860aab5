import sys

from dupo_verl.cli import main

sys.exit(main())
