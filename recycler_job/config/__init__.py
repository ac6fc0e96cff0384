"""Configuration from flags, environment and an optional YAML file, validated before any work.

Precedence is flags > environment > file > defaults, per option. Everything is checked up front
so a bad value stops the run (exit 2) before the cluster or a volume is touched. This package
must stay light: `--help` may not import the Kubernetes client, `openshift` or `sh`.

Where things are:

- options.py: every option, one `Config` field each, declared with
  `option(default, ENV, converter, help, ...)`; the flag, the file key, `--help` and the README
  table (`tests/unit/test_readme.py --write`) follow from it. Read this one first.
- convert.py: the converters the declarations name (they validate and give the one-line reason).
- spec.py: what an option is (`Option`), `option()`, `ConfigError`.
- load.py: the parser, the file, the precedence, `load_config`.
"""

from recycler_job.config.load import NAMESPACE_FILE, build_parser, load_config, version
from recycler_job.config.options import DEFAULT_FAILED_MESSAGES, OPTIONS, Config
from recycler_job.config.spec import ConfigError, Option

__all__ = [
    "DEFAULT_FAILED_MESSAGES",
    "NAMESPACE_FILE",
    "OPTIONS",
    "Config",
    "ConfigError",
    "Option",
    "build_parser",
    "load_config",
    "version",
]
