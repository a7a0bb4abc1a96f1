"""The `edge-s2s` command: one typer app; each command lives in its own module.

`main()` is the console entry point: a user's mistake (`EdgeS2SError`) becomes one
`error: ...` line on stderr and exit code 1, never a traceback.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from ..runtime.errors import EdgeS2SError
from . import (
    answer_cmd,
    bundle_cmds,
    caption_cmd,
    checkpoint_cmd,
    export_cmd,
    generate_cmd,
    plot_cmd,
    profile_cmd,
    train_cmds,
    transcribe_cmd,
    translate_cmd,
)


def _flags_take_no_value() -> None:
    """typer 0.2x writes the type beside every option in --help, `<bool>` beside on/off flags too,
    which invites `--json true` (and "true" is then read as the next argument). A flag takes no
    value: show none."""
    option = typer.core.TyperOption
    if getattr(option, "_edge_s2s_flags", False):
        return
    shown = option.display_type_rich

    def display_type_rich(self, ctx):
        return None if self.is_flag else shown(self, ctx)

    option.display_type_rich = display_type_rich
    option._edge_s2s_flags = True


_flags_take_no_value()

app = typer.Typer(
    name="edge-s2s",
    help="Train attention seq2seq models in PyTorch, export them to ONNX bundles, run them with ONNX Runtime.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _show_version(value: bool) -> None:
    if value:
        from .. import __version__

        typer.echo(f"edge-s2s {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", help="Print the version and exit.", is_eager=True,
                                          callback=_show_version)] = False,
) -> None:
    """Train attention seq2seq models in PyTorch, export them to ONNX bundles, run them with ONNX Runtime."""


app.add_typer(train_cmds.app, name="train")
app.command("export")(export_cmd.export)
app.command("caption")(caption_cmd.caption)
app.command("translate")(translate_cmd.translate)
app.command("generate")(generate_cmd.generate)
app.command("answer")(answer_cmd.answer)
app.command("transcribe")(transcribe_cmd.transcribe)
app.command("plot-trace")(plot_cmd.plot_trace)
app.command("plot")(plot_cmd.plot)
app.command("evaluate")(translate_cmd.evaluate)
app.command("info")(bundle_cmds.info)
app.command("verify")(bundle_cmds.verify)
app.command("profile")(profile_cmd.profile)
app.command("convert-checkpoint")(checkpoint_cmd.convert_checkpoint)


def run(argv: list[str] | None = None) -> int:
    """Run the CLI with `argv`; return the exit code (used by `main` and the tests)."""
    try:
        result = app(args=argv, prog_name="edge-s2s", standalone_mode=False)
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


def main() -> None:
    sys.exit(run(sys.argv[1:]))


if __name__ == "__main__":
    main()
