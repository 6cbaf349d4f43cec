"""``python -m nni_snn`` is the ``nni-snn`` command (what NNI trials run, whatever the PATH)."""

import sys

from nni_snn.cli.main import main

sys.exit(main())
