"""Entry point: `gluster-recycler` and `python -m recycler_job`. One pass, then exit."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from recycler_job import report as report_module
from recycler_job.config import OPTIONS, ConfigError, load_config
from recycler_job.exit_codes import ExitCode
from recycler_job.logs import error_line, output_logger, setup_logging

log = logging.getLogger("recycler_job")


def main(argv: Sequence[str] | None = None, environ: dict[str, str] | None = None) -> int:
    """Run one pass and return the process exit code (see exit_codes.py)."""
    try:
        config = load_config(sys.argv[1:] if argv is None else argv, environ or dict(os.environ))
    except ConfigError as exc:
        print(error_line(str(exc), _wanted_format(argv, environ)), file=sys.stderr)
        return int(ExitCode.BAD_CONFIG)
    problem = _log_dir_problem(config.log_dir)
    if problem is None:
        from recycler_job import tls  # noqa: PLC0415 (keeps --help and bad config fast)

        problem = tls.startup_problem(config.tls_management, config.backend)
    if problem is None and config.backend == "fuse":
        problem = _foreign_mounts(config.mount_root)
    if problem:
        print(error_line(problem, config.log_format), file=sys.stderr)
        return int(ExitCode.BAD_CONFIG)
    setup_logging(debug=config.debug, log_format=config.log_format)
    log.debug("effective configuration: %s", config.redacted())

    from recycler_job.runner import Runner  # noqa: PLC0415 (keeps --help and bad config fast)

    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        if not stop.is_set():
            log.warning(
                "%s received: no new volume starts; cleaning up", signal.Signals(signum).name
            )
        stop.set()

    # Kept until exit: a signal that arrives while the report is written must not kill us.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)
    report = Runner(config, stop=stop).run()
    # Each output on its own: a closed stdout or a full disk must not cost the others.
    # With `--report-file -` the JSON report is all of stdout (for `| jq`): the summary moves
    # to stderr.
    to_stdout = config.report_file == report_module.STDOUT
    out = output_logger(config.log_format, sys.stderr if to_stdout else None)
    indent = "" if config.log_format == "json" else "  "
    try:
        out.info(
            report.summary_line(),
            extra={
                "outcome": report.outcome,
                "exit_code": report.exit_code,
                "counts": dict(report.counts()),
            },
        )
        for volume in report.volumes:
            if volume.outcome == "failed":
                out.error(
                    f"{indent}pv/{volume.pv}: {volume.error}",
                    extra={"pv": volume.pv, "outcome": volume.outcome, "step": volume.step},
                )
        sys.stdout.flush()
    except OSError as exc:
        log.error("could not print the summary: %s", exc)
    if config.report_file:
        try:
            report.write_json(config.report_file)
        except (OSError, TypeError, ValueError) as exc:
            where = "stdout" if to_stdout else config.report_file
            log.error("could not write --report-file %s: %s", where, exc)
    report.write_termination_log()
    if config.pushgateway:
        from recycler_job import metrics  # noqa: PLC0415

        metrics.push(config.pushgateway, report, namespace=config.lease_namespace)
    return report.exit_code


def _log_dir_problem(log_dir: str) -> str | None:
    """Create --log-dir (the gluster CLI and libgfapi log there); why it cannot be, or None."""
    try:
        os.makedirs(log_dir, mode=0o700, exist_ok=True)
    except OSError as exc:
        return f"--log-dir {log_dir}: cannot create: {exc.strerror or exc}"
    if not os.access(log_dir, os.W_OK | os.X_OK):
        return f"--log-dir {log_dir}: not writable by uid {os.geteuid()}"
    return None


def _wanted_format(argv: Sequence[str] | None, environ: dict[str, str] | None) -> str:
    """The log format asked for, when the configuration as a whole was rejected."""
    args = list(sys.argv[1:] if argv is None else argv)
    env = environ or os.environ
    option = next(opt for opt in OPTIONS if opt.dest == "log_format")
    wanted = env.get(option.env or "", "")
    for i, arg in enumerate(args):
        if arg == option.flag and i + 1 < len(args):
            wanted = args[i + 1]
        elif arg.startswith(option.flag + "="):
            wanted = arg.partition("=")[2]
    return "json" if wanted.strip().lower() == "json" else "text"


def _foreign_mounts(mount_root: str) -> str | None:
    """Why `mount_root` cannot be ours, or None: it must hold no mount this tool did not make.

    Checked when the run starts, not when the config is parsed: mounts come and go. A foreign
    mount there would share the directory our cleanup and mountpoints work in.
    """
    from recycler_job.gluster import errors, records  # noqa: PLC0415 (keeps --help and bad config fast)

    try:
        foreign = records.foreign_mounts(mount_root)
    except errors.GlusterError as exc:
        return f"--mount-root {mount_root}: {exc}"
    if not foreign:
        return None
    first = foreign[0]
    return (
        f"--mount-root {mount_root} holds {len(foreign)} mount(s) gluster-recycler did not "
        f"make (first: {first.fstype} {first.source!r} on {first.mount_point!r}); "
        "give it a directory of its own"
    )


if __name__ == "__main__":
    raise SystemExit(main())
