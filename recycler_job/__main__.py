"""Allows `python -m recycler_job`."""

from recycler_job.cli import main

raise SystemExit(main())
