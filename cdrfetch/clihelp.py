"""How the command line presents itself: metavars, choices, examples, completion and the error style.

Applied to the Click commands once they are built (`polish`), so every command, whoever declares
it, reads the same way. Only typer and the provider names are imported here (start-up).
"""

from __future__ import annotations

import difflib
import sys
from collections.abc import Callable, Sequence
from typing import Annotated, Any

import typer
from typer._click import exceptions as click_errors
from typer.core import TyperGroup

from cdrfetch import providers
from cdrfetch.errors import CdrfetchError

# Options shared by several commands (declared once).
ProfileOpt = Annotated[str | None, typer.Option("--profile", "-p", help="Profile name [env CDRFETCH_PROFILE].")]
AccountOpt = Annotated[str | None, typer.Option("--account", "-a", help="One of the provider's `accounts:`.")]
ConfigOpt = Annotated[str | None, typer.Option("--config", "-c", help="Config file [env CDRFETCH_CONFIG].")]
SetOpt = Annotated[list[str] | None, typer.Option("--set", help="Override a non-secret setting: KEY=VALUE.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Only warnings and errors on stderr.")]
VerboseOpt = Annotated[
    int, typer.Option("--verbose", "-v", count=True, show_default=False, help="More detail on stderr (-vv: more).")
]
LogFormatOpt = Annotated[str, typer.Option("--log-format", help="Log lines as text or json (one object a line).")]
SandboxOpt = Annotated[bool, typer.Option("--sandbox", help="Run against the built-in emulator on 127.0.0.1.")]
LimitOpt = Annotated[int, typer.Option("--limit", "-n", min=1, help="How many runs to show (at least 1).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]

# Plain (non-rich) help: rendering help with rich costs more start-up time than the whole CLI.
PLAIN_HELP: dict[str, Any] = {"rich_markup_mode": None, "no_args_is_help": True}


FORMATS = ("parquet", "csv", "jsonl", "json")
LOG_FORMATS = ("text", "json")

# Parameter name -> what its value looks like in the help.
METAVARS = {
    "date": "day|today|YYYY-MM-DD", "start": "WHEN", "end": "WHEN", "output": "FILE|DIR/|-",
    "fmt": "|".join(FORMATS), "summary_json": "PATH", "profile": "NAME", "config": "PATH",
    "overrides": "KEY=VALUE", "log_format": "|".join(LOG_FORMATS), "key": "SECRET", "port": "PORT",
    "limit": "N", "provider": "PROVIDER", "knobs": "NAME=VALUE", "metrics_file": "PATH", "ping_url": "URL",
}  # fmt: skip
CASE_INSENSITIVE = ("fmt", "log_format")

# Command path (the provider as {p}) -> example lines, shown after the options.
EXAMPLES = {
    "<provider> pull": [
        "cdrfetch {p} pull                        # yesterday, Parquet under cdrs/",
        "cdrfetch {p} pull --date 2024-03-05 -o calls.csv",
        "cdrfetch {p} pull --since-last -q -o /data/cdrs/ --summary-json last.json",
    ],
    "<provider> login": [
        "cdrfetch {p} login                       # hidden prompt",
        "printf '%s\\n' \"$SECRET\" | cdrfetch {p} login   # from stdin, for scripts",
        "cdrfetch {p} login --delete --profile prod",
    ],
    "<provider> config": [
        "cdrfetch {p} config",
        "cdrfetch {p} config --json --profile prod",
        "cdrfetch {p} config --sandbox",
    ],
    "<provider> check": ["cdrfetch {p} check", "cdrfetch {p} check --profile prod", "cdrfetch {p} check --sandbox"],
    "<provider> runs": ["cdrfetch {p} runs", "cdrfetch {p} runs --json -n 5"],
    "doctor": ["cdrfetch doctor", "cdrfetch doctor --profile prod --config /etc/cdrfetch/config.yaml"],
    "runs": ["cdrfetch runs", "cdrfetch runs --provider laaffic --json"],
    "sandbox serve": [
        "cdrfetch sandbox serve laaffic",
        "cdrfetch sandbox serve youlianyun --port 8080 --knob empty=true",
        "cdrfetch sandbox serve polycom --list-knobs",
    ],
    "config init": [
        "cdrfetch config init                     # every provider, where cdrfetch looks for it",
        "cdrfetch config init --provider laaffic --provider polycom",
        "cdrfetch config init --config ./cdrfetch.yaml --force",
    ],
}


def epilog(key: str, provider: str = "") -> str | None:
    """The examples block of one command (`\\b` keeps Click from re-wrapping it)."""
    lines = EXAMPLES.get(key)
    return "\b\nExamples:\n" + "\n".join(f"  {line.format(p=provider)}" for line in lines) if lines else None


def _profiles(ctx: Any, param: Any, incomplete: str) -> list[str]:
    """Profile names of the config file named on the line so far (or the default one)."""
    try:
        from cdrfetch import config

        path, _named = config.config_path(ctx.params.get("config"))
        return [name for name in config.read_profiles(path) if name.startswith(incomplete)] if path.exists() else []
    except Exception:  # completion never fails loudly
        return []


def _words(words: Callable[[], list[str]]) -> Callable[[Any, Any, str], list[str]]:
    return lambda ctx, param, incomplete: [word for word in words() if word.startswith(incomplete)]


COMPLETIONS: dict[str, Callable[[Any, Any, str], list[str]]] = {
    "fmt": _words(lambda: list(FORMATS)),
    "log_format": _words(lambda: list(LOG_FORMATS)),
    "date": _words(lambda: ["day", "today"]),
    "provider": _words(providers.names),
    "profile": _profiles,
}


def _lowered(callback: Any) -> Any:
    def lower(ctx: Any, param: Any, value: Any) -> Any:
        value = value.lower() if isinstance(value, str) else value
        return callback(ctx, param, value) if callback is not None else value

    return lower


def polish(command: Any, key: str, provider: str = "") -> Any:
    """Metavars, completion, case-insensitive choices and examples for `command` and its sub-commands.

    `key` is the command path below the root, `<provider>` standing for a provider group."""
    if getattr(command, "_polished", False):
        return command
    command._polished = True
    for name, sub in getattr(command, "commands", {}).items():
        polish(sub, f"{key} {name}", provider)
    if getattr(command, "epilog", None) is None:
        command.epilog = epilog(key, provider)
    for param in command.params:
        if getattr(param, "count", False) or getattr(param, "is_flag", False):
            pass
        elif param.name in METAVARS:
            param.metavar = METAVARS[param.name]
            if param.param_type_name == "argument":  # `PROVIDER`, not `{PROVIDER}` and `PROVIDER <str>`
                param._usage_display_name = lambda name=METAVARS[param.name]: name
                param.display_type_rich = lambda ctx: None
        elif param.metavar is None and param.param_type_name == "option":
            param.metavar = str(param.name).upper()  # a name, never a Python type such as <str>
        if param.name in COMPLETIONS:
            param._custom_shell_complete = COMPLETIONS[param.name]
        if param.name in CASE_INSENSITIVE:
            param.callback = _lowered(param.callback)
    return command


def provider_help(name: str) -> str:
    """The one-line help of a provider group in the root listing (built without importing providers)."""
    return f"{name}: pull call records, manage credentials and settings."


def titled_help(name: str) -> str:
    """The help of `cdrfetch <provider>`, led by the provider's title (only this provider is imported)."""
    try:
        title = providers.load(name).title
    except CdrfetchError:  # a plugin that fails to load says so when one of its commands runs
        return provider_help(name)
    return f"{title}: pull call records, manage credentials and settings."


class RootGroup(TyperGroup):
    """The root group: one error style for Click's usage errors and ours, and "did you mean" for typos."""

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        name = args[0] if args else ""
        if args and not name.startswith("-") and self.get_command(ctx, name) is None:
            known = self.list_commands(ctx)
            close = [k for k in known if k.startswith(name)] or difflib.get_close_matches(name, known, n=2)
            hint = f"did you mean {' or '.join(close)}?" if close else f"one of: {', '.join(known)}"
            raise click_errors.UsageError(f"no such command {name!r}; {hint}", ctx)
        return super().resolve_command(ctx, args)

    def main(
        self, args: Sequence[str] | None = None, prog_name: str | None = None, complete_var: str | None = None,
        standalone_mode: bool = True, windows_expand_args: bool = True, **extra: Any,
    ) -> Any:  # fmt: skip
        call = (args, prog_name, complete_var)
        if not standalone_mode:
            return super().main(*call, standalone_mode=False, windows_expand_args=windows_expand_args, **extra)
        try:
            code = super().main(*call, standalone_mode=False, windows_expand_args=windows_expand_args, **extra)
        except click_errors.NoArgsIsHelpError as error:
            error.show()
            sys.exit(error.exit_code)
        except click_errors.UsageError as error:
            usage_error(error, list(args if args is not None else sys.argv[1:]))
        except click_errors.ClickException as error:
            error.show()
            sys.exit(error.exit_code)
        except typer.Abort:
            typer.echo("cdrfetch: aborted", err=True)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


def usage_error(error: Any, args: Sequence[str] = ()) -> None:
    """A Click usage error in the style of every other error: one line, a hint, exit 2, in the log format
    asked for; the summary and metrics files asked for say so too, so a monitor never reads an old success."""
    from cdrfetch import logs

    message = error.format_message()
    message = message[:1].lower() + message[1:] if message[1:2].islower() else message
    message = message.rstrip(".")
    where = error.ctx.command_path if error.ctx is not None else "cdrfetch"
    hint = f"see `{where} --help`"
    if option_value(args, "--log-format") == "json":
        logs.configure(fmt="json")
    report_rejected(args, message, hint, int(error.exit_code))
    logs.final(message, hint, exit_code=int(error.exit_code))
    sys.exit(error.exit_code)


def report_rejected(args: Sequence[str], message: str, hint: str, code: int) -> None:
    """The closing summary, metrics and ping of a command line Click refused before any of our code ran."""
    names = ("summary_json", "metrics_file", "ping_url")
    outputs = {name: option_value(args, "--" + name.replace("_", "-")) for name in names}
    if not any(outputs.values()):
        return
    import logging

    from cdrfetch import config
    from cdrfetch.monitoring import Monitor
    from cdrfetch.summary import RunSummary

    provider = args[0] if args and providers.entry(args[0]) is not None else ""
    profile = option_value(args, "--profile") or option_value(args, "-p")
    summary = RunSummary(provider, "", config.profile_choice(profile)[0], "", "")
    monitor = Monitor(summary, logging.getLogger("cdrfetch"), **outputs)
    monitor.start()
    monitor.finish(code, (message, hint))  # an unwritable file is a warning here: the run failed anyway


def option_value(args: Sequence[str], option: str) -> str | None:
    """The value given to `option` (`--opt VALUE` or `--opt=VALUE`) among raw arguments, the last one winning."""
    value = None
    for position, arg in enumerate(args):
        if arg == "--":
            break
        if arg == option and position + 1 < len(args):
            value = args[position + 1]
        elif arg.startswith(option + "="):
            value = arg[len(option) + 1 :]
    return value
