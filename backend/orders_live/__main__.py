import sys

from orders_live.cli import main

sys.exit(main())
