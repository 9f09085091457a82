"""`python -m billing_admin` is `billing-admin`."""

import sys

from billing_admin.cli import main

sys.exit(main())
