"""How every entry point fails: a problem the user can fix (a seqclf error, a Hydra composition
error, a Lightning setting it refuses) becomes one paragraph on stderr and exit status 2; anything
else is a crash and keeps its traceback."""

from __future__ import annotations

import difflib
import errno
import functools
import logging
import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

from hydra.errors import ConfigCompositionException, HydraException, InstantiationException, MissingConfigException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigAttributeError, ConfigKeyError, OmegaConfBaseException

from seqclf import CONF_DIR, migrate
from seqclf.errors import NothingToDo, SeqclfError

# A full disk or a folder the user may not write to: theirs to fix, not a crash.
_DISK_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOTDIR}


def fail(prog: str, message: str) -> NoReturn:
    print(f"{prog}: error: {message}", file=sys.stderr)
    sys.exit(2)


def key_values(argv: list[str], keys: tuple[str, ...], repeatable: str) -> dict:
    """seqclf-predict's and seqclf-generate's ``key=value`` arguments, each value read verbatim after
    the first ``=`` (a review may hold commas and quotes); ``repeatable`` may be given several times
    (a list). An unknown key is a SeqclfError listing the known ones."""
    args: dict = {repeatable: []}
    for arg in argv:
        key, sep, value = arg.partition("=")
        if not sep or key not in keys:
            raise SeqclfError(f"unexpected argument {arg!r}; arguments are {', '.join(k + '=...' for k in keys)}.")
        if key == repeatable:
            args[key].append(value)
        else:
            args[key] = value
    return args


def log_to_files(logger: logging.Logger, message: str) -> None:
    """``message`` as an error in the log files (a run's train.log), not again on the terminal."""
    record = logger.makeRecord(logger.name, logging.ERROR, __file__, 0, message, None, None)
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)


def explain(error: BaseException, defaults: DictConfig | None = None) -> str | None:
    """The one-paragraph message for an error the user can fix, or None for a crash. ``defaults``
    (the shipped config) lets a mistyped key get a "did you mean"."""
    if isinstance(error, InstantiationException) and isinstance(error.__cause__, SeqclfError):
        return str(error.__cause__)  # Hydra wraps what a constructor raises (seqclf's checks among it)
    if isinstance(error, SeqclfError):
        return str(error)
    if isinstance(error, MissingConfigException) and error.options:
        group, _, option = (error.missing_cfg_file or "").rpartition("/")
        return f"{group}={option} is not an option of {group}; choose one of {', '.join(sorted(error.options))}."
    cause = error.__cause__ if isinstance(error, ConfigCompositionException) else error
    if isinstance(cause, (ConfigKeyError, ConfigAttributeError)) and getattr(cause, "full_key", None):
        key = str(cause.full_key)
        if migrate.old_setting(key):
            return (
                f"{key} is now {migrate.old_setting(key)}: the encoder's settings live under model.encoder, the "
                "optimizer's under optimizer (seqclf-train --help lists them)."
            )
        owners = _tasks_with_setting(key)
        if owners:
            return (
                f"{key} is a setting of {' and '.join(f'task={t}' for t in owners)} only, not of this task; drop it "
                "(or choose that task)."
            )
        parent, _, name = key.rpartition(".")
        node = OmegaConf.select(defaults, parent) if defaults is not None and parent else defaults
        known = list(node.keys()) if isinstance(node, DictConfig) else []
        close = difflib.get_close_matches(name, known, n=1)
        hint = (
            f"did you mean {parent + '.' if parent else ''}{close[0]}?" if close else "seqclf-train --help lists them."
        )
        return f"{key} is not a setting; {hint}"
    if isinstance(error, (HydraException, OmegaConfBaseException)):
        lines = [ln.strip() for ln in str(error).splitlines() if ln.strip() and "HYDRA_FULL_ERROR" not in ln]
        if any("mismatched input '='" in ln for ln in lines):
            lines.append("A value holding '=' or ',' (such as a sweep job's folder) must be quoted: key='value'.")
        return " ".join(lines) or type(error).__name__
    if _is_lightning_refusal(error):
        return f"Lightning refused a trainer setting: {error}"
    if isinstance(error, OSError) and error.errno in _DISK_ERRORS:
        where = f" {error.filename}" if error.filename else ""
        return (
            f"could not write{where}: {error.strerror}. Free some space, or choose a folder you can write to "
            "(paths.log_dir for runs, data.cache_dir for the data cache)."
        )
    if _short_write(error):
        return (
            f"a file could not be written whole ({str(error).splitlines()[0]}): the disk is most likely full. Free "
            "some space, or choose another folder (paths.log_dir for runs, data.cache_dir for the data cache); the "
            "files written before are intact (seqclf writes each to a temporary file, then renames it)."
        )
    return None


def _short_write(error: BaseException) -> bool:
    """A write cut short without an errno: numpy's ("N requested and M written") or torch's checkpoint
    writer ("unexpected pos", "failed writing"), as a full disk makes them."""
    text = str(error)
    if isinstance(error, OSError) and error.errno is None:
        return "requested and" in text and "written" in text
    if isinstance(error, RuntimeError):
        return "unexpected pos" in text or "PytorchStreamWriter failed writing" in text
    return False


def _tasks_with_setting(key: str) -> list[str]:
    """The tasks whose own config (conf/task/<task>.yaml) has the model or data setting ``key``."""
    from seqclf import CONF_DIR

    owners = []
    for path in sorted(Path(CONF_DIR, "task").glob("*.yaml")):
        if _has_key(path, key):
            owners.append(path.stem)
    return owners


def _has_key(path: Path, key: str) -> bool:
    parent, _, name = key.rpartition(".")
    node = OmegaConf.select(OmegaConf.load(path), parent) if parent else OmegaConf.load(path)
    return OmegaConf.is_dict(node) and name in node


def _is_lightning_refusal(error: BaseException) -> bool:
    """Lightning's MisconfigurationException; Lightning is not imported for that (only a command
    that has imported it can have raised one)."""
    lightning = sys.modules.get("lightning.fabric.utilities.exceptions")
    return lightning is not None and isinstance(error, lightning.MisconfigurationException)


@contextmanager
def errors_as_messages(prog: str) -> Iterator[None]:
    """Known errors inside become ``fail(prog, ...)``; others propagate with their traceback."""
    try:
        yield
    except NothingToDo as e:
        print(f"{prog}: {e}", file=sys.stderr)
        sys.exit(0)
    except Exception as e:
        message = explain(e)
        if message is None:
            raise
        fail(prog, message)


# Hydra's own command-line flags; anything else that starts with "-" is a mistake.
HYDRA_FLAGS = {
    "-h", "--help", "--hydra-help", "--version", "-c", "--cfg", "--resolve", "-p", "--package", "-i", "--info",
    "-m", "--multirun", "-r", "--run", "-sc", "--shell-completion", "-cp", "--config-path", "-cn", "--config-name",
    "-cd", "--config-dir", "--experimental-rerun",
}  # fmt: skip
FLAGS_WITH_VALUES = {"-c", "--cfg", "-p", "--package", "-i", "--info", "-cp", "--config-path", "-cn", "--config-name",
                     "-cd", "--config-dir", "-sc", "--shell-completion", "--experimental-rerun"}  # fmt: skip


def common_mistake(args: list[str], conf_dir: str, config_name: str, prog: str) -> str | None:
    """A pointed hint for the command-line habits of other tools: ``--max_epochs 3`` (argparse style)
    and ``model=rnn, lstm`` (a space after a sweep's comma splits it into two arguments)."""
    for i, arg in enumerate(args):
        flag = arg.split("=", 1)[0]
        if arg.startswith("-") and flag not in HYDRA_FLAGS:
            name = flag.lstrip("-").replace("-", "_")
            value = arg.split("=", 1)[1] if "=" in arg else (args[i + 1] if i + 1 < len(args) else "...")
            key = _setting_named(name, conf_dir, config_name) or name
            return (
                f"{arg} is not an option: {prog} takes Hydra overrides, key=value with no dashes, e.g. "
                f"{key}={value} ({prog} --help lists every setting)."
            )
        previous = args[i - 1] if i else ""
        if not arg.startswith("-") and "=" not in arg and previous.endswith(",") and "=" in previous:
            return (
                f"'{previous} {arg}': the space after the comma makes two arguments; write the values without "
                f"spaces, {previous}{arg}, or quote them: '{previous} {arg}'."
            )
        if not arg.startswith("-") and "=" not in arg and previous not in FLAGS_WITH_VALUES:
            return f"'{arg}' is not an override; give settings as key=value, e.g. trainer.max_epochs=3."
    return None


def _setting_named(name: str, conf_dir: str, config_name: str) -> str | None:
    """The full key of the shipped setting whose last part is ``name`` (max_epochs -> trainer.max_epochs)."""
    import hydra
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    with hydra.initialize_config_dir(config_dir=conf_dir, version_base="1.3"):
        cfg = OmegaConf.to_container(hydra.compose(config_name), resolve=False)
    GlobalHydra.instance().clear()
    found = []

    def walk(node, prefix):
        for key, value in node.items():
            full = f"{prefix}{key}"
            if key == name:
                found.append(full)
            if isinstance(value, dict):
                walk(value, full + ".")

    walk(cfg, "")
    return min(found, key=len) if found else None


def wants_help(args: list[str]) -> bool:
    return any(a in ("--help", "-h") for a in args)


def print_help(conf_dir: str, config_name: str, args: list[str], prog: str) -> None:
    """``--help``: the config's help template (``hydra.help``) filled in as Hydra fills it, with the
    config groups listed from the folders of ``conf_dir``. Hydra lists them by composing the config
    once per group, most of a second before anything is printed."""
    import string

    import hydra
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import OmegaConf, open_dict

    overrides = [a for a in args if not a.startswith("-")]
    GlobalHydra.instance().clear()
    with hydra.initialize_config_dir(config_dir=conf_dir, version_base="1.3"), errors_as_messages(prog):
        cfg = hydra.compose(config_name, overrides=overrides, return_hydra_config=True)
    GlobalHydra.instance().clear()
    template = cfg.hydra.help.template
    with open_dict(cfg):
        del cfg["hydra"]
    root = Path(conf_dir)
    groups = {
        folder.relative_to(root).as_posix(): sorted(p.stem for p in folder.glob("*.yaml"))
        for folder in root.rglob("*")
        if folder.is_dir() and folder.relative_to(root).parts[0] != "hydra"
    }
    listing = "".join(f"{group}: {', '.join(options)}\n" for group, options in sorted(groups.items()) if options)
    print(string.Template(template).safe_substitute(APP_CONFIG_GROUPS=listing, CONFIG=OmegaConf.to_yaml(cfg)))


def check_overrides(conf_dir: str, config_name: str, args: list[str], prog: str, check=None, check_sweep=None) -> None:
    """Compose ``config_name`` with the command line's overrides (a sweep's first value of each)
    before Hydra runs anything, so that a mistyped key, an unknown option or, for a single run, a bad
    value (``check(cfg, overrides)``; ``cfg`` has its ``hydra`` node) stops with one paragraph before
    any run folder exists; a multirun gets ``check_sweep(cfg)`` instead. Flags such as
    --help or --cfg are left to Hydra."""
    import hydra
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.override_parser.overrides_parser import OverridesParser

    mistake = common_mistake(args, conf_dir, config_name, prog)
    if mistake:
        fail(prog, mistake)
    if any(a.startswith("-") and a not in ("-m", "--multirun") for a in args):
        return
    multirun = any(a in ("-m", "--multirun") for a in args)
    GlobalHydra.instance().clear()
    with hydra.initialize_config_dir(config_dir=conf_dir, version_base="1.3"):
        with errors_as_messages(prog):
            overrides = []
            for override in OverridesParser.create().parse_overrides([a for a in args if not a.startswith("-")]):
                if not override.is_sweep_override():
                    overrides.append(override.input_line)
                elif override.is_discrete_sweep():  # a value such as interval(...) has nothing to compose
                    overrides.append(f"{override.get_key_element()}={next(override.sweep_string_iterator())}")
        try:
            cfg = hydra.compose(
                config_name, overrides=overrides, return_hydra_config=(check or check_sweep) is not None
            )
        except Exception as e:
            message = explain(e, hydra.compose(config_name))
            if message is None:
                raise
            fail(prog, message)
        with errors_as_messages(prog):
            if check is not None and not multirun:
                check(cfg, overrides)
            if check_sweep is not None and multirun:
                check_sweep(cfg)
    GlobalHydra.instance().clear()


def closed_pipe_ends_quietly(main):
    """An entry point that stops quietly when whoever reads its output stops reading
    (``seqclf-train --help | head``), with the status a shell gives a process killed by SIGPIPE, as
    Unix tools do, not a BrokenPipeError traceback."""

    @functools.wraps(main)
    def entry(*args, **kwargs):
        try:
            try:
                return main(*args, **kwargs)
            finally:  # what is still buffered (argparse's --help, say) fails here, not at exit
                sys.stdout.flush()
        except BrokenPipeError:
            # Python flushes stdout again at exit; into /dev/null, that cannot fail a second time
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(128 + getattr(signal, "SIGPIPE", 13))

    return entry


def key_value_command(usage: str, doc: str):
    """The entry point of a command of ``key=value`` arguments (seqclf-predict, -generate, -export):
    no arguments, ``-h`` or ``--help`` print ``usage`` and ``doc``; otherwise ``main(argv)`` runs with
    the arguments given (sys.argv's when called with none), quiet when its reader stops reading."""

    def wrap(main):
        @closed_pipe_ends_quietly
        @functools.wraps(main)
        def entry(argv: list[str] | None = None) -> None:
            argv = sys.argv[1:] if argv is None else argv
            if not argv or argv[0] in ("-h", "--help"):
                print(usage + "\n\n" + doc)
                return None
            return main(argv)

        return entry

    return wrap


@closed_pipe_ends_quietly
def console(config_name: str, prog: str, main, check=None, check_sweep=None) -> None:
    """A Hydra command's entry point: ``--help`` from its config, the overrides and values checked
    before Hydra creates a run folder (check_overrides), then ``main`` (its @hydra.main function)."""
    if wants_help(sys.argv[1:]):
        return print_help(CONF_DIR, config_name, sys.argv[1:], prog)
    check_overrides(CONF_DIR, config_name, sys.argv[1:], prog, check=check, check_sweep=check_sweep)
    main()
