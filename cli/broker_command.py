"""``mqlite broker``: run the broker daemon in the foreground until SIGINT or SIGTERM;
SIGHUP reloads the configuration file and reopens log files."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import threading
from types import FrameType

from mqlite.broker import Broker, StoreError
from mqlite.broker.config.config_file import ConfigError
from mqlite.broker.engine.log_topic import LogTopicHandler
from mqlite.broker.net.listeners import ListenerError, tls_context
from mqlite.broker.security.access_control import AccessControl
from mqlite.broker.security.access_control import configured as access_configured
from mqlite.broker.security.acl_file import AclFileError
from mqlite.broker.security.authentication import PasswordAuthentication
from mqlite.broker.security.authentication import configured as authentication_configured
from mqlite.broker.security.password_file import PasswordFileError
from mqlite.broker.security.scram_auth import ScramFile

from . import build_info
from .broker_settings import DaemonSettings, add_flags, effective_toml, resolve
from .daemon_logging import configure_logging
from .workers import run_workers, worker_plan

log = logging.getLogger("mqlite.broker")


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("broker", help="run the MQTT broker",
                                 description="Run the MQTT 3.1.1/5.0 broker in the foreground. "
                                             "Flags override the configuration file.")
    parser.add_argument("-c", "--config", metavar="FILE", default=None,
                        help="configuration file: mqlite's TOML if it ends in .toml, "
                             "mosquitto.conf syntax otherwise")
    parser.add_argument("--check", action="store_true",
                        help="validate the configuration, print the effective settings, exit")
    parser.add_argument("--workers", type=int, default=None, metavar="N",
                        help="run N broker processes on the same ports, each a cluster node "
                             "(with --cluster, or a local redis-server started for them)")
    # A worker of --workers: the read end of a pipe from its supervisor, EOF when it ends.
    parser.add_argument("--supervisor-fd", type=int, default=None, help=argparse.SUPPRESS)
    add_flags(parser)
    parser.set_defaults(run=run)


def _check_files(settings: DaemonSettings) -> None:
    """The certificate, key and password files load, before anything is opened."""
    for listener in settings.broker.effective_listeners():
        if listener.tls:
            tls_context(listener)
    if authentication_configured(settings.broker):
        PasswordAuthentication(settings.broker)
    if access_configured(settings.broker):
        AccessControl(settings.broker)
    if settings.broker.scram_file is not None:
        ScramFile.load(settings.broker.scram_file)


def _fail(message: str) -> int:
    print(f"mqlite broker: {message}", file=sys.stderr)
    return 1


def run(args: argparse.Namespace) -> int:
    try:
        settings = resolve(args)
        _check_files(settings)
    except (ConfigError, ListenerError, PasswordFileError, AclFileError) as exc:
        return _fail(str(exc))
    plan = None
    if args.workers is not None:
        try:
            plan = worker_plan(args, settings)
        except ConfigError as exc:
            return _fail(str(exc))
    if args.check:
        for warning in settings.warnings:
            print(f"warning: {warning}", file=sys.stderr)
        sys.stdout.write(effective_toml(settings))
        return 0
    topic = LogTopicHandler()  # log_dest topic: published once the broker runs
    try:
        configure_logging(settings, topic)
    except OSError as exc:
        return _fail(f"cannot log to {settings.log_file}: {exc.strerror or exc}")
    for warning in settings.warnings:
        log.warning("%s", warning)
    fallback = build_info.fallback_warning(build_info.recorded(), build_info.running())
    if fallback is not None:
        log.warning("%s", fallback)
    if plan is not None:
        try:
            return run_workers(args, settings, plan)
        except ConfigError as exc:
            log.error("%s", exc)
            return 1
    try:
        broker = Broker(config=settings.broker, db=settings.db, sync=settings.sync)
    except StoreError as exc:
        log.error("%s", exc)
        return 1
    topic.attach(broker)
    _install_signals(broker, args, settings, topic)
    if args.supervisor_fd is not None:
        _stop_with_supervisor(broker, args.supervisor_fd)
    try:
        broker.serve_forever()
    except OSError as exc:  # a listener that cannot be opened (ListenerError included)
        text = str(exc) if isinstance(exc, ListenerError) else \
            f"cannot listen: {exc.strerror or exc}"
        if "listens there" in text and not settings.broker.listeners:
            text += "; choose another port with --port (e.g. --port 1884)"
        log.error("%s", text)
        return 1
    finally:
        # Stopped: a further signal while the interpreter exits must not turn exit code 0
        # into death by signal (Python restores the default handlers as it finalizes, but
        # leaves ignored signals ignored).
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, signal.SIG_IGN)
    return 0


def _stop_with_supervisor(broker: Broker, lifeline: int) -> None:
    """A worker ends with its supervisor: once the supervisor's end of the pipe is closed (it
    exited, or was killed), the worker stops gracefully, so that no second set of workers
    started later shares the port with it."""
    def watch() -> None:
        with contextlib.suppress(OSError):
            while os.read(lifeline, 64):
                pass
        log.error("workers: the supervisor is gone; stopping this worker")
        broker.stop()

    threading.Thread(target=watch, name="supervisor-watch", daemon=True).start()


def _install_signals(broker: Broker, args: argparse.Namespace, settings: DaemonSettings,
                     topic: LogTopicHandler) -> None:
    running = [settings]

    def stop(signum: int, frame: FrameType | None) -> None:
        log.info("%s received: stopping", signal.Signals(signum).name)
        broker.stop()

    def hang_up(signum: int, frame: FrameType | None) -> None:
        # Only handed to the broker's thread: a signal handler may interrupt a log call or a
        # loop turn halfway.
        broker.call_soon(lambda: _reload(broker, args, running, topic))

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGHUP, hang_up)


def _reload(broker: Broker, args: argparse.Namespace, running: list[DaemonSettings],
            topic: LogTopicHandler) -> None:
    """SIGHUP: read the configuration again and apply it; a file with errors changes
    nothing. Log files are reopened either way (logrotate)."""
    old = running[0]
    if not args.config:
        configure_logging(old, topic)
        log.info("SIGHUP received: log reopened; there is no configuration file to reload")
        return
    log.info("SIGHUP received: reloading %s", args.config)
    try:
        new = resolve(args)
        _check_files(new)
    except (ConfigError, ListenerError, PasswordFileError, AclFileError) as exc:
        log.error("reload refused, the running configuration stays: %s", exc)
        return
    try:
        configure_logging(new, topic)
    except OSError as exc:
        log.error("reload: cannot log to %s (%s); logging as before", new.log_file,
                  exc.strerror or exc)
        configure_logging(old, topic)
    for warning in new.warnings:
        log.warning("%s", warning)
    if (new.db, new.sync) != (old.db, old.sync):
        log.warning("reload: db and sync change only with a restart; still using %s", old.db)
    broker.reload(new.broker)
    running[0] = new
