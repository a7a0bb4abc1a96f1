"""The `edge-s2s` command: one typer app; each command lives in its own module.

`main()` is the console entry point: a user's mistake (`EdgeS2SError`) becomes one
`error: ...` line on stderr and exit code 1, never a traceback.

Commands are registered lazily: `edge-s2s caption photo.jpg` imports and builds the caption
command alone (typer builds every registered command's parameters on each start, about 80 ms for
all of them), while `edge-s2s --help` and an unknown command get the whole app.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Annotated

import typer

from ..runtime.errors import EdgeS2SError

# name -> (module in this package, function); "train" is a command group (train_cmds.app)
COMMANDS = {
    "export": ("export_cmd", "export"),
    "caption": ("caption_cmd", "caption"),
    "translate": ("translate_cmd", "translate"),
    "generate": ("generate_cmd", "generate"),
    "answer": ("answer_cmd", "answer"),
    "transcribe": ("transcribe_cmd", "transcribe"),
    "plot-trace": ("plot_cmd", "plot_trace"),
    "plot": ("plot_cmd", "plot"),
    "evaluate": ("translate_cmd", "evaluate"),
    "info": ("bundle_cmds", "info"),
    "verify": ("bundle_cmds", "verify"),
    "profile": ("profile_cmd", "profile"),
    "convert-checkpoint": ("checkpoint_cmd", "convert_checkpoint"),
}
GROUPS = {"train": ("train_cmds", "app")}


def _flags_take_no_value() -> None:
    """typer 0.2x writes the type beside every option in --help, `<bool>` beside on/off flags too,
    which invites `--json true` (and "true" is then read as the next argument). A flag takes no
    value: show none."""
    option = typer.core.TyperOption
    shown = getattr(option, "display_type_rich", None)
    if shown is None or getattr(option, "_edge_s2s_flags", False):  # older typer: no type column to fix
        return

    def display_type_rich(self, ctx):
        return None if self.is_flag else shown(self, ctx)

    option.display_type_rich = display_type_rich
    option._edge_s2s_flags = True


_flags_take_no_value()

HELP = "Train attention seq2seq models in PyTorch, export them to ONNX bundles, run them with ONNX Runtime."


def _show_version(value: bool) -> None:
    if value:
        from .. import __version__

        typer.echo(f"edge-s2s {__version__}")
        raise typer.Exit()


def _root(
    version: Annotated[bool, typer.Option("--version", help="Print the version and exit.", is_eager=True,
                                          callback=_show_version)] = False,
) -> None:
    """Train attention seq2seq models in PyTorch, export them to ONNX bundles, run them with ONNX Runtime."""


def build_app(names: list[str] | None = None) -> typer.Typer:
    """The app with the commands `names` (all of them when None), each imported only now."""
    app = typer.Typer(name="edge-s2s", help=HELP, no_args_is_help=True, add_completion=False,
                      pretty_exceptions_enable=False, context_settings={"help_option_names": ["-h", "--help"]})
    app.callback()(_root)
    for name in names if names is not None else [*GROUPS, *COMMANDS]:
        module, attr = GROUPS.get(name) or COMMANDS[name]
        target = getattr(importlib.import_module(f".{module}", __package__), attr)
        if name in GROUPS:
            app.add_typer(target, name=name)
        else:
            app.command(name)(target)
    return app


def _command_of(argv: list[str]) -> list[str] | None:
    """Just the command the arguments name, or None (help, --version, a typo: the whole app)."""
    first = next((a for a in argv if not a.startswith("-")), None)
    return [first] if first in COMMANDS or first in GROUPS else None


def run(argv: list[str] | None = None) -> int:
    """Run the CLI with `argv`; return the exit code (used by `main` and the tests)."""
    try:
        argv = sys.argv[1:] if argv is None else list(argv)
        result = build_app(_command_of(argv))(args=argv, prog_name="edge-s2s", standalone_mode=False)
    except EdgeS2SError as e:
        typer.echo(f"error: {e}", err=True)
        return 1
    except ImportError as e:
        missing = getattr(e, "name", None) or str(e)
        typer.echo(
            f"error: this command needs {missing}, which is not installed (training and export need torch and "
            "onnx): in the edge-s2s checkout run PIP_CONSTRAINT=constraints.txt pip install -e \".[train]\" "
            "(the constraint keeps torch on its CPU wheel; an unpinned torch pulls several GB of CUDA packages)",
            err=True,
        )
        return 1
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        return 130
    except typer.Exit as e:
        return e.exit_code
    except typer.Abort:
        typer.echo("aborted", err=True)
        return 1
    except Exception as e:
        # Usage errors (typer's click exceptions, vendored or not) arrive here in
        # non-standalone mode: show them the way click would.
        if callable(getattr(e, "show", None)) and isinstance(getattr(e, "exit_code", None), int):
            e.show()
            return e.exit_code
        raise
    return result if isinstance(result, int) else 0


# commands that only read and print: their process may end without Python's teardown (ONNX Runtime's
# sessions and thread pools take ~40 ms to tear down, a sixth of a caption's cold start)
FAST_EXIT = {"caption", "transcribe", "translate", "generate", "answer", "info", "verify", "plot", "plot-trace"}


def main() -> None:
    argv = sys.argv[1:]
    code = run(argv)
    if (_command_of(argv) or [None])[0] in FAST_EXIT:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    main()
