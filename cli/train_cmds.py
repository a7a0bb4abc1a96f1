"""`edge-s2s train <task>`: train a model into a run directory (needs the [train] extra)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..runtime.errors import InputError

app = typer.Typer(help="Train a model into a run directory (checkpoints, vocabulary, metrics).", no_args_is_help=True)


@app.command("translate")
def translate(
    data: Annotated[Path | None, typer.Option(help="Tab-separated parallel text: source<TAB>target per line.")] = None,
    out: Annotated[Path, typer.Option(help="Run directory (checkpoints, tokens.txt, config.json, metrics.jsonl).")] = Path("runs/translate"),
    resume: Annotated[bool, typer.Option("--resume", help="Continue from the run directory's last checkpoint.")] = False,
    val_file: Annotated[Path | None, typer.Option(help="Separate validation TSV (default: hold out --val-fraction).")] = None,
    val_fraction: Annotated[float, typer.Option(help="Share of --data held out for validation.")] = 0.05,
    attention: Annotated[str, typer.Option(help="Match function: dot, general, additive, cosine, or none.")] = "general",
    emb_dim: Annotated[int, typer.Option(help="Token embedding width.")] = 64,
    enc_hidden: Annotated[int, typer.Option(help="Encoder LSTM width per direction.")] = 128,
    dec_hidden: Annotated[int, typer.Option(help="Decoder LSTM width.")] = 256,
    att_dim: Annotated[int, typer.Option(help="Hidden width of additive attention.")] = 128,
    dropout: Annotated[float, typer.Option(help="Dropout on embeddings and outputs.")] = 0.1,
    epochs: Annotated[int, typer.Option(help="Passes over the training data.")] = 10,
    batch_size: Annotated[int, typer.Option(help="Sentence pairs per step.")] = 32,
    lr: Annotated[float, typer.Option(help="Adam learning rate.")] = 1e-3,
    clip: Annotated[float, typer.Option(help="Gradient norm clip (0 = off).")] = 1.0,
    max_steps: Annotated[int, typer.Option(help="Stop after this many steps (0 = all epochs).")] = 0,
    checkpoint_every: Annotated[int, typer.Option(help="Also checkpoint every N steps (0 = each epoch).")] = 0,
    max_length: Annotated[int, typer.Option(help="Longest sentence in words kept for training.")] = 50,
    vocab_min_count: Annotated[int, typer.Option(help="Drop words seen fewer times (they become <unk>).")] = 2,
    vocab_max_size: Annotated[int, typer.Option(help="Largest shared vocabulary.")] = 30000,
    seed: Annotated[int, typer.Option(help="Random seed (data split, init, batches).")] = 1,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="No progress bar.")] = False,
) -> None:
    """Train a translator: bidirectional LSTM encoder, attention LSTM decoder, teacher forcing."""
    from ..train.config import ModelConfig, TrainConfig
    from ..train import train_translator

    if not resume:
        if data is None:
            raise InputError("--data is required: a tab-separated file of source<TAB>target lines")
        if not data.is_file():
            raise InputError(f"{data} does not exist: give a tab-separated file of source<TAB>target lines")
    try:
        cfg = TrainConfig(
            data=str(data) if data else "",
            out_dir=str(out),
            model=ModelConfig(emb_dim=emb_dim, enc_hidden=enc_hidden, dec_hidden=dec_hidden, attention=attention,
                              att_dim=att_dim, dropout=dropout),
            epochs=epochs, batch_size=batch_size, lr=lr, clip=clip, seed=seed, val_fraction=val_fraction,
            val_file=str(val_file) if val_file else None, max_source_length=max_length, max_target_length=max_length,
            vocab_min_count=vocab_min_count, vocab_max_size=vocab_max_size, checkpoint_every=checkpoint_every,
            max_steps=max_steps,
        )
    except ValueError as e:
        raise InputError(str(e)) from None
    run_dir = train_translator(cfg, resume=resume, progress=not no_progress)
    typer.echo(f"run directory: {run_dir}   next: edge-s2s export {run_dir} --out bundles/NAME")
