"""`edge-s2s train <task>`: train a model into a run directory (needs the [train] extra)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from ..runtime.errors import InputError

app = typer.Typer(help="Train a model into a run directory (checkpoints, vocabulary, metrics).", no_args_is_help=True)


@app.callback()
def _torchrun_process() -> None:
    """Under torchrun (WORLD_SIZE > 1; `torchrun -m edge_s2s train ...`): pin this process's GPU
    (cuda:LOCAL_RANK) before any model is built and let only rank 0 print to standard output; the
    epoch loop then joins the process group (train/core/distributed.py). A plain process skips this."""
    if os.environ.get("WORLD_SIZE", "1") in ("", "0", "1"):
        return
    from ..train.core.distributed import pin_device, world_from_env

    world = world_from_env()
    pin_device()
    if world is not None and not world.main:  # one set of log lines (errors still reach stderr)
        sys.stdout = open(os.devnull, "w", encoding="utf-8")


def _next_step(run_dir: Path) -> None:
    """What every train command prints at the end: where the run is and how to export it."""
    typer.echo(f"run directory: {run_dir}   next: edge-s2s export {run_dir} --out bundles/NAME")


NOT_SETTINGS = frozenset({"out", "resume", "extend", "no_progress"})  # options that are not the run's settings


def _typed(ctx: typer.Context, asked, paths: dict[str, tuple[str, ...]]) -> list:
    """The options the user typed (not left at their defaults), each with the config fields it sets
    (`paths`, else the field of the same name in the config or its model)."""
    from ..train.core.run_dir import Given, setting_path

    out = []
    for param in ctx.command.params:
        source = ctx.get_parameter_source(param.name)
        if param.name in NOT_SETTINGS or source is None or source.name in ("DEFAULT", "DEFAULT_MAP"):
            continue
        flag = next((o for o in param.opts if o.startswith("--")), param.opts[0])
        out.append(Given(flag, ctx.params[param.name], paths.get(param.name) or (setting_path(asked, param.name),)))
    return out


def _resumed(ctx: typer.Context, asked, load_saved, command: str, extend: bool,
             paths: dict[str, tuple[str, ...]] | None = None, length=None):
    """The config `--resume` goes on with (the run's saved one; train/core/run_dir.py `plan_resume`
    checks the typed options against it), or None when the run is finished (said in one line)."""
    from ..train.core.run_dir import RunLength, plan_resume

    plan = plan_resume(asked.out_dir, load_saved, asked, _typed(ctx, asked, paths or {}), extend,
                       f"edge-s2s train {command} --out {asked.out_dir}", length or RunLength())
    if plan.finished:
        typer.echo(plan.finished)
    return plan.config


def _no_extend_without_resume(extend: bool, resume: bool) -> None:
    if extend and not resume:
        raise InputError("--extend lengthens a run being resumed: add --resume (and the new total, e.g. --epochs N)")


def _feed_config(feed: str, schedule: str, k: float | None, p: float, min_p: float, pick: str):
    """The FeedConfig the --feed/--ss-* options of translate and caption describe (train/methods/exposure.py)."""
    from ..train.methods.exposure import FeedConfig

    return FeedConfig(mode=feed, schedule=schedule, k=k, p=p, min_p=min_p, pick=pick)


FeedOpt = Annotated[str, typer.Option(help="What the decoder reads while training: reference (teacher forcing), "
                                           "scheduled (scheduled sampling, --ss-*), or distribution (the expected "
                                           "embedding under the previous softmax; changes the exported model).")]
ScheduleOpt = Annotated[str, typer.Option(help="With --feed scheduled: p(reference) over steps: inverse_sigmoid "
                                               "k/(k+exp(step/k)), linear 1-step/k, exponential k**step, or "
                                               "constant --ss-p.")]
KOpt = Annotated[float | None, typer.Option(help="The schedule's k (default: 300 inverse_sigmoid, 5000 linear, "
                                                 "0.9995 exponential).")]
POpt = Annotated[float, typer.Option(help="With --ss-schedule constant: p (1 = always the reference, 0 = always "
                                          "the model).")]
MinPOpt = Annotated[float, typer.Option(help="Floor of the decaying schedules.")]
PickOpt = Annotated[str, typer.Option(help="The model's own input: sample (from its softmax) or argmax.")]
ResumeOpt = Annotated[bool, typer.Option("--resume", help="Continue the run in --out from its last checkpoint, as it "
                                                          "was configured (its config.json): every setting, and "
                                                          "--epochs, come from the run; options typed again must "
                                                          "match them.")]
ExtendOpt = Annotated[bool, typer.Option("--extend", help="With --resume: train the run longer, to the new TOTAL "
                                                          "given with --epochs (not a number of extra epochs, so "
                                                          "the same line can be rerun after an interruption); the "
                                                          "new total is saved in config.json.")]
MaxStepsOpt = Annotated[int, typer.Option(help="Stop at this optimizer step (0 = all epochs); a stop, not the end: "
                                               "--resume goes on to --epochs.")]


@app.command("translate")
def translate(
    ctx: typer.Context,
    data: Annotated[Path | None, typer.Option(help="Tab-separated parallel text: source<TAB>target per line.")] = None,
    out: Annotated[Path, typer.Option(help="Run directory (checkpoints, tokens.txt, config.json, metrics.jsonl).")] = Path("runs/translate"),
    resume: ResumeOpt = False,
    extend: ExtendOpt = False,
    val_file: Annotated[Path | None, typer.Option(help="Separate validation TSV (default: hold out --val-fraction).")] = None,
    val_fraction: Annotated[float, typer.Option(help="Share of --data held out for validation.")] = 0.05,
    attention: Annotated[str, typer.Option(help="Match function: dot, general, additive, cosine, or none.")] = "general",
    decoder: Annotated[str, typer.Option(help="lstm (attention LSTM) or ntm (Neural Turing Machine whose memory "
                                              "starts as the encoder's outputs; --attention is then unused).")] = "lstm",
    ntm_width: Annotated[int, typer.Option(help="With --decoder ntm: width of a memory row.")] = 64,
    ntm_read_heads: Annotated[int, typer.Option(help="With --decoder ntm: read heads.")] = 1,
    ntm_write_heads: Annotated[int, typer.Option(help="With --decoder ntm: write heads.")] = 1,
    emb_dim: Annotated[int, typer.Option(help="Token embedding width.")] = 64,
    enc_hidden: Annotated[int, typer.Option(help="Encoder LSTM width per direction.")] = 128,
    dec_hidden: Annotated[int, typer.Option(help="Decoder LSTM width.")] = 256,
    att_dim: Annotated[int, typer.Option(help="Hidden width of additive attention.")] = 128,
    dropout: Annotated[float, typer.Option(help="Dropout on embeddings and outputs.")] = 0.1,
    epochs: Annotated[int, typer.Option(help="Passes over the training data.")] = 10,
    batch_size: Annotated[int, typer.Option(help="Sentence pairs per step.")] = 32,
    lr: Annotated[float, typer.Option(help="Adam learning rate.")] = 1e-3,
    clip: Annotated[float, typer.Option(help="Gradient norm clip (0 = off).")] = 1.0,
    max_steps: MaxStepsOpt = 0,
    checkpoint_every: Annotated[int, typer.Option(help="Also checkpoint every N steps (0 = each epoch).")] = 0,
    keep_epochs: Annotated[int, typer.Option(help="Keep the last N epoch-end checkpoints (epoch-NNN.pt) so that "
                                                  "`export --checkpoint average` can average them (0 = none).")] = 0,
    max_length: Annotated[int, typer.Option(help="Longest sentence in words kept for training.")] = 50,
    vocab_min_count: Annotated[int, typer.Option(help="Drop words seen fewer times (they become <unk>).")] = 2,
    vocab_max_size: Annotated[int, typer.Option(help="Largest shared vocabulary.")] = 30000,
    feed: FeedOpt = "reference",
    ss_schedule: ScheduleOpt = "inverse_sigmoid",
    ss_k: KOpt = None,
    ss_p: POpt = 1.0,
    ss_min_p: MinPOpt = 0.0,
    ss_pick: PickOpt = "sample",
    tokenizer: Annotated[str, typer.Option(help="word (words and punctuation) or sentencepiece (subwords learnt "
                                                "from the training split; the model travels in the bundle).")] = "word",
    subword_vocab_size: Annotated[int, typer.Option(help="With --tokenizer sentencepiece: pieces in the shared "
                                                         "vocabulary.")] = 8000,
    subword_type: Annotated[str, typer.Option(help="With --tokenizer sentencepiece: unigram or bpe.")] = "unigram",
    lowercase: Annotated[bool, typer.Option("--lowercase/--keep-case", help="Lower-case text before tokenizing "
                                                                          "(--keep-case: output keeps its capitals).")] = True,
    init_state: Annotated[str, typer.Option(help="The attention decoder's first state: learned (one vector) or "
                                                 "encoder (from the encoder's final states).")] = "learned",
    feed_attention: Annotated[bool, typer.Option("--feed-attention", help="Luong input feeding: each step also "
                                                                          "reads the previous attentional vector.")] = False,
    label_smoothing: Annotated[float, typer.Option(help="Label smoothing of the training loss (0 = off; 0.1 is "
                                                        "usual).")] = 0.0,
    lr_decay: Annotated[float, typer.Option(help="Multiply the learning rate by this after an epoch that did not "
                                                 "improve validation (1 = off).")] = 1.0,
    patience: Annotated[int, typer.Option(help="Stop after this many epochs without validation improvement "
                                               "(0 = run all epochs).")] = 0,
    select_by: Annotated[str, typer.Option(help="best.pt by validation loss or bleu.")] = "loss",
    val_bleu_max: Annotated[int, typer.Option(help="Validation sentences decoded for BLEU each epoch "
                                                   "(0 = none).")] = 500,
    seed: Annotated[int, typer.Option(help="Random seed (data split, init, batches).")] = 1,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="No progress bar.")] = False,
) -> None:
    """Train a translator: bidirectional LSTM encoder, attention LSTM (or NTM) decoder, teacher forcing."""
    from ..train import train_translator
    from ..train.core.run_dir import load_run_config
    from ..train.translate.config import ModelConfig, TrainConfig

    _no_extend_without_resume(extend, resume)
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
                              att_dim=att_dim, dropout=dropout, decoder=decoder, ntm_width=ntm_width,
                              ntm_read_heads=ntm_read_heads, ntm_write_heads=ntm_write_heads,
                              input_feed="distribution" if feed == "distribution" else "token",
                              feed_attention=feed_attention, init_state=init_state),
            feed=_feed_config(feed, ss_schedule, ss_k, ss_p, ss_min_p, ss_pick),
            epochs=epochs, batch_size=batch_size, lr=lr, clip=clip, seed=seed, val_fraction=val_fraction,
            val_file=str(val_file) if val_file else None, max_source_length=max_length, max_target_length=max_length,
            vocab_min_count=vocab_min_count, vocab_max_size=vocab_max_size, checkpoint_every=checkpoint_every,
            keep_epochs=keep_epochs, max_steps=max_steps, tokenizer=tokenizer, subword_vocab_size=subword_vocab_size,
            subword_type=subword_type,
            lowercase=lowercase, label_smoothing=label_smoothing, lr_decay=lr_decay, patience=patience,
            select_by=select_by, val_bleu_max=val_bleu_max,
        )
    except ValueError as e:
        raise InputError(str(e)) from None
    if resume:
        cfg = _resumed(ctx, cfg, lambda: load_run_config(out, TrainConfig, "translate"), "translate", extend,
                       {"max_length": ("max_source_length", "max_target_length"), "feed": ("feed.mode",), "ss_schedule": ("feed.schedule",), "ss_k": ("feed.k",), "ss_p": ("feed.p",),
                "ss_min_p": ("feed.min_p",), "ss_pick": ("feed.pick",)})
        if cfg is None:
            return
    run_dir = train_translator(cfg, resume=resume, progress=not no_progress)
    _next_step(run_dir)


@app.command("caption")
def caption(
    ctx: typer.Context,
    captions: Annotated[Path | None, typer.Option(help="Caption JSON: COCO style (images + annotations) or a "
                                                   "Karpathy split file (dataset_*.json).")] = None,
    images: Annotated[Path | None, typer.Option(help="Folder the JSON's image file names are relative to.")] = None,
    out: Annotated[Path, typer.Option(help="Run directory.")] = Path("runs/caption"),
    resume: ResumeOpt = False,
    extend: ExtendOpt = False,
    val_captions: Annotated[Path | None, typer.Option(help="COCO-style validation JSON (default: the file's 'val' "
                                                       "split, or hold out --val-fraction).")] = None,
    val_fraction: Annotated[float, typer.Option(help="Share of images held out when the file has no split.")] = 0.1,
    attention: Annotated[str, typer.Option(help="soft (Show, Attend and Tell) or none (the mean-feature baseline).")] = "soft",
    doubly_stochastic: Annotated[float, typer.Option(help="Weight of the doubly stochastic attention regulariser "
                                                          "(0 = off).")] = 0.0,
    tau: Annotated[str, typer.Option(help="Regulariser target: learned, or fixed (tau = 1, the paper).")] = "learned",
    finetune_cnn: Annotated[bool, typer.Option("--finetune-cnn", help="Train the CNN too (default: frozen, "
                                                                     "features cached).")] = False,
    labels: Annotated[int | None, typer.Option(help="ImageNet label slots the decoder attends over and copies "
                                                    "names from (default 5 with soft attention; 0 = off).")] = None,
    label_inject: Annotated[float, typer.Option(help="Training: chance a caption's label name the classifier "
                                                     "missed takes a slot.")] = 0.25,
    copy_names: Annotated[bool, typer.Option("--copy-names", help="A label slot's name is only ever copied, "
                                                                  "never generated (transfers copying to photos).")] = False,
    text: Annotated[str, typer.Option(help="Caption targets: clean (lower case, no punctuation) or raw "
                                           "(tokenized as written).")] = "clean",
    any_end: Annotated[bool, typer.Option("--any-end", help="Let captions end on any word (default: never "
                                                            "after a, the, of, ...).")] = False,
    emb_dim: Annotated[int, typer.Option(help="Word embedding width.")] = 256,
    dec_hidden: Annotated[int, typer.Option(help="Decoder LSTM width.")] = 512,
    region_dim: Annotated[int, typer.Option(help="Width the 1280-d CNN regions are projected to.")] = 512,
    att_dim: Annotated[int, typer.Option(help="Hidden width of the attention MLP.")] = 256,
    dropout: Annotated[float, typer.Option(help="Dropout.")] = 0.3,
    epochs: Annotated[int, typer.Option(help="Passes over the training captions.")] = 20,
    batch_size: Annotated[int, typer.Option(help="Captions per step.")] = 32,
    lr: Annotated[float, typer.Option(help="Adam learning rate.")] = 4e-4,
    max_steps: MaxStepsOpt = 0,
    checkpoint_every: Annotated[int, typer.Option(help="Also checkpoint every N steps (0 = each epoch).")] = 0,
    max_length: Annotated[int, typer.Option(help="Longest caption in words (longer ones are cut).")] = 24,
    vocab_min_count: Annotated[int, typer.Option(help="Drop words seen fewer times (they become <unk>).")] = 2,
    val_max: Annotated[int, typer.Option(help="Validation images captioned for BLEU/CIDEr-D each epoch.")] = 500,
    feed: FeedOpt = "reference",
    ss_schedule: ScheduleOpt = "inverse_sigmoid",
    ss_k: KOpt = None,
    ss_p: POpt = 1.0,
    ss_min_p: MinPOpt = 0.0,
    ss_pick: PickOpt = "sample",
    seed: Annotated[int, typer.Option(help="Random seed.")] = 1,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="No progress bar.")] = False,
) -> None:
    """Train a captioner (Show, Attend and Tell on EfficientNet-Lite0 regions) from COCO-style data."""
    from ..train.caption.config import CaptionModelConfig, CaptionTrainConfig
    from ..train.caption.loop import train_captioner
    from ..train.core.run_dir import load_run_config

    _no_extend_without_resume(extend, resume)
    if not resume:
        if captions is None or images is None:
            raise InputError("--captions and --images are required: a COCO-style caption JSON and its image folder")
        if not captions.is_file():
            raise InputError(f"{captions} does not exist: give a COCO-style or Karpathy caption JSON")
        if not images.is_dir():
            raise InputError(f"{images} is not a directory: give the folder holding the images")
    try:
        cfg = CaptionTrainConfig(
            captions=str(captions or ""), images=str(images or ""), out_dir=str(out),
            val_captions=str(val_captions) if val_captions else None, val_fraction=val_fraction,
            model=CaptionModelConfig(emb_dim=emb_dim, dec_hidden=dec_hidden, region_dim=region_dim, att_dim=att_dim,
                                     attention=attention, dropout=dropout, doubly_stochastic=doubly_stochastic,
                                     tau=tau, finetune_cnn=finetune_cnn,
                                     input_feed="distribution" if feed == "distribution" else "token",
                                     labels=(5 if attention == "soft" and feed != "distribution" else 0)
                                     if labels is None else labels,
                                     label_inject=label_inject, copy_names=copy_names,
                                     no_end_words=not any_end),
            text=text,
            feed=_feed_config(feed, ss_schedule, ss_k, ss_p, ss_min_p, ss_pick),
            epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, max_caption_length=max_length,
            vocab_min_count=vocab_min_count, checkpoint_every=checkpoint_every, max_steps=max_steps, val_max=val_max,
        )
    except ValueError as e:
        raise InputError(str(e)) from None
    if resume:
        cfg = _resumed(ctx, cfg, lambda: load_run_config(out, CaptionTrainConfig, "caption"), "caption", extend,
                       {"max_length": ("max_caption_length",), "any_end": ("model.no_end_words",), "feed": ("feed.mode",), "ss_schedule": ("feed.schedule",), "ss_k": ("feed.k",), "ss_p": ("feed.p",),
                "ss_min_p": ("feed.min_p",), "ss_pick": ("feed.pick",)})
        if cfg is None:
            return
    run_dir = train_captioner(cfg, resume=resume, progress=not no_progress)
    _next_step(run_dir)


@app.command("scst")
def scst(
    ctx: typer.Context,
    source: Annotated[Path | None, typer.Option("--from", help="A trained translate or caption run directory "
                                                               "(its best.pt is fine-tuned).")] = None,
    out: Annotated[Path | None, typer.Option(help="New run directory for the fine-tuned model.")] = None,
    resume: ResumeOpt = False,
    extend: ExtendOpt = False,
    epochs: Annotated[int, typer.Option(help="Passes over the training items.")] = 5,
    lr: Annotated[float, typer.Option(help="Adam learning rate (small: the model is already trained).")] = 5e-5,
    samples: Annotated[int, typer.Option(help="Sentences sampled per item, each against its greedy decode.")] = 1,
    batch_size: Annotated[int, typer.Option(help="Items (sentences or images) per step (0 = the source run's).")] = 0,
    seed: Annotated[int, typer.Option(help="Random seed (0 = the source run's).")] = 0,
    max_steps: MaxStepsOpt = 0,
    checkpoint_every: Annotated[int, typer.Option(help="Also checkpoint every N steps (0 = each epoch).")] = 0,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="No progress bar.")] = False,
) -> None:
    """Self-critical sequence training (Rennie et al. 2017): reward whole sampled sentences (CIDEr-D for captions,
    sentence BLEU for translation) against the model's greedy decode."""
    from ..train.caption.scst import FAMILY as CAPTION
    from ..train.methods.scst import ScstConfig, load_scst_config, train_scst
    from ..train.translate.scst import FAMILY as TRANSLATE

    _no_extend_without_resume(extend, resume)
    if out is None:
        raise InputError("--out is required: the new run directory for the fine-tuned model")
    if not resume and source is None:
        raise InputError("--from is required: the translate or caption run directory to fine-tune")
    if not resume and not source.is_dir():
        raise InputError(f"--from {source} is not a directory: pass a run directory written by edge-s2s train")
    try:
        cfg = ScstConfig(source=str(source or ""), out_dir=str(out), epochs=epochs, lr=lr, samples=samples,
                         batch_size=batch_size, seed=seed, max_steps=max_steps, checkpoint_every=checkpoint_every)
    except ValueError as e:
        raise InputError(f"--{str(e).replace('_', '-')}") from None
    if resume:
        cfg = _resumed(ctx, cfg, lambda: load_scst_config(out), "scst", extend)
        if cfg is None:
            return
    run_dir = train_scst(cfg, {"translate": TRANSLATE, "caption": CAPTION}, resume=resume, progress=not no_progress)
    _next_step(run_dir)


@app.command("speech")
def speech(
    ctx: typer.Context,
    corpus: Annotated[str, typer.Option(help="fsdd (spoken digit strings) or tuxpaint (Tux Paint's recorded "
                                             "phrases in --lang).")] = "fsdd",
    lang: Annotated[str, typer.Option(help="With --corpus tuxpaint: the recordings' language (fr, es, ...).")] = "fr",
    stamps: Annotated[Path | None, typer.Option(help="With --corpus tuxpaint: Tux Paint's stamps folder "
                                                     "(default /usr/share/tuxpaint/stamps).")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="The sets ({train,val,test}/manifest.jsonl), built when "
                                                       "missing (default data/fsdd-digits or data/tuxpaint-LANG).")
                        ] = None,
    fsdd: Annotated[Path | None, typer.Option(help="Free Spoken Digit Dataset folder (default $EDGE_S2S_DATA/fsdd "
                                                   "or ../shared/data/fsdd beside the checkout).")
                    ] = None,
    n_train: Annotated[int, typer.Option(help="Training digit strings to build.")] = 2000,
    n_val: Annotated[int, typer.Option(help="Validation digit strings to build.")] = 200,
    n_test: Annotated[int, typer.Option(help="Held-out-speaker test strings to build.")] = 300,
    out: Annotated[Path, typer.Option(help="Run directory.")] = Path("runs/speech"),
    resume: ResumeOpt = False,
    extend: ExtendOpt = False,
    attention: Annotated[str, typer.Option(help="additive, or location (location-aware).")] = "additive",
    listener_hidden: Annotated[int, typer.Option(help="Listener BLSTM width per direction.")] = 128,
    dec_hidden: Annotated[int, typer.Option(help="Speller LSTM width.")] = 128,
    spec_augment: Annotated[bool, typer.Option("--spec-augment", help="SpecAugment masking while training.")] = False,
    epochs: Annotated[int, typer.Option(help="Passes over the training strings.")] = 20,
    batch_size: Annotated[int, typer.Option(help="Utterances per step.")] = 32,
    lr: Annotated[float, typer.Option(help="Adam learning rate.")] = 1e-3,
    max_steps: MaxStepsOpt = 0,
    checkpoint_every: Annotated[int, typer.Option(help="Also checkpoint every N steps (0 = each epoch).")] = 0,
    val_max: Annotated[int, typer.Option(help="Validation strings decoded for CER each epoch (0 = loss only).")] = 200,
    max_length: Annotated[int | None, typer.Option(help="Most characters decoded (default: 24 for fsdd; the "
                                                        "longest transcript plus 8 for tuxpaint).")] = None,
    seed: Annotated[int, typer.Option(help="Random seed (init, batches).")] = 1,
    init_from: Annotated[Path | None, typer.Option(help="Fine-tune: start from this speech run's best.pt (or a "
                                                        "checkpoint file) instead of random weights; same model "
                                                        "and features.")] = None,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="No progress bar.")] = False,
) -> None:
    """Train a Listen-Attend-Spell recogniser: FSDD digit strings (one speaker held out) or Tux Paint phrases."""
    from ..train.caption.tuxpaint import STAMPS_DIR
    from ..train.core.data_roots import shared_data
    from ..train.core.run_dir import load_run_config
    from ..train.speech.config import SpeechModelConfig
    from ..train.speech.loop import CORPORA, TASK, SpeechTrainConfig, corpus_features, train_speech

    _no_extend_without_resume(extend, resume)
    if corpus not in CORPORA:
        raise InputError(f"unknown --corpus {corpus!r}: use {' or '.join(CORPORA)}")
    if data_dir is None:
        data_dir = Path("data/fsdd-digits") if corpus == "fsdd" else Path(f"data/tuxpaint-{lang}")
    if max_length is None:
        max_length = 24 if corpus == "fsdd" else 0
    try:
        fc = corpus_features(corpus)
        cfg = SpeechTrainConfig(
            data_dir=str(data_dir), fsdd=str(fsdd or shared_data("fsdd")), n_train=n_train, n_val=n_val, n_test=n_test,
            corpus=corpus, lang=lang, stamps=str(stamps or STAMPS_DIR),
            out_dir=str(out), model=SpeechModelConfig(n_mels=fc.n_mels, listener_hidden=listener_hidden,
                                                      dec_hidden=dec_hidden, attention=attention),
            features=fc.to_dict(), spec_augment=spec_augment, epochs=epochs, batch_size=batch_size, lr=lr,
            max_steps=max_steps, checkpoint_every=checkpoint_every, val_max=val_max, max_length=max_length, seed=seed,
            init_from=str(init_from or ""))
    except ValueError as e:
        raise InputError(str(e)) from None
    if resume:
        cfg = _resumed(ctx, cfg, lambda: load_run_config(out, SpeechTrainConfig, TASK), "speech", extend)
        if cfg is None:
            return
    run_dir = train_speech(cfg, resume=resume, progress=not no_progress)
    _next_step(run_dir)


def _train_generator(ctx: typer.Context, command: str, cfg_kwargs: dict, model_kwargs: dict, resume: bool,
                     extend: bool, no_progress: bool) -> None:
    """`train lm` and `train pixels`: one generator trainer, two kinds of data."""
    from ..train.generate.config import GeneratorConfig, GeneratorTrainConfig
    from ..train.generate.loop import load_generator_run_config, train_generator

    _no_extend_without_resume(extend, resume)
    try:
        cfg = GeneratorTrainConfig(model=GeneratorConfig(**model_kwargs), **cfg_kwargs)
    except ValueError as e:
        raise InputError(str(e)) from None
    if resume:
        out = cfg.out_dir
        saved = load_generator_run_config(out) if (Path(out) / "config.json").is_file() else None
        if saved is not None and (saved.data == "kjv") != (command == "lm"):
            other = "lm" if saved.data == "kjv" else "pixels"
            raise InputError(f"{out} is a {other} run, not a {command} run: resume it with "
                             f"`edge-s2s train {other} --out {out} --resume`")
        cfg = _resumed(ctx, cfg, lambda: load_generator_run_config(out), command, extend)
        if cfg is None:
            return
    run_dir = train_generator(cfg, resume=resume, progress=not no_progress)
    _next_step(run_dir)


@app.command("lm")
def lm(
    ctx: typer.Context,
    unit: Annotated[str, typer.Option(help="Token unit: char or word.")] = "char",
    corpus: Annotated[Path | None, typer.Option(help="Verse file in `bible -f` format (default: the whole King "
                                                     "James Bible from Debian's bible-kjv).")] = None,
    out: Annotated[Path, typer.Option(help="Run directory.")] = Path("runs/lm"),
    resume: ResumeOpt = False,
    extend: ExtendOpt = False,
    emb_dim: Annotated[int, typer.Option(help="Token embedding width.")] = 64,
    hidden: Annotated[int, typer.Option(help="LSTM width.")] = 512,
    layers: Annotated[int, typer.Option(help="Stacked LSTM layers.")] = 1,
    dropout: Annotated[float, typer.Option(help="Dropout.")] = 0.1,
    epochs: Annotated[int, typer.Option(help="Passes over the training verses.")] = 5,
    batch_size: Annotated[int, typer.Option(help="Verses per step.")] = 64,
    lr: Annotated[float, typer.Option(help="Adam learning rate.")] = 2e-3,
    max_tokens: Annotated[int, typer.Option(help="Longest training sequence (longer verses are cut).")] = 400,
    max_train: Annotated[int, typer.Option(help="Use only the first N training verses (0 = all).")] = 0,
    vocab_min_count: Annotated[int, typer.Option(help="Words seen fewer times become <unk>.")] = 1,
    max_steps: MaxStepsOpt = 0,
    checkpoint_every: Annotated[int, typer.Option(help="Also checkpoint every N steps (0 = each epoch).")] = 0,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 1,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="No progress bar.")] = False,
) -> None:
    """Train a character or word LSTM language model on the King James Bible (public domain)."""
    if corpus is not None and not corpus.is_file():
        raise InputError(f"--corpus {corpus} does not exist: give a verse file, or leave it out to use bible-kjv")
    _train_generator(
        ctx, "lm", dict(data="kjv", corpus=str(corpus) if corpus else None, out_dir=str(out), epochs=epochs,
             batch_size=batch_size, lr=lr, seed=seed, max_tokens=max_tokens, max_train=max_train,
             vocab_min_count=vocab_min_count, max_steps=max_steps, checkpoint_every=checkpoint_every),
        dict(unit=unit, arch="lstm", emb_dim=emb_dim, hidden=hidden, layers=layers, dropout=dropout,
             blocked_ids=[0, 2]),
        resume, extend, no_progress)


@app.command("pixels")
def pixels(
    ctx: typer.Context,
    data: Annotated[str, typer.Option(help="fashion (Fashion-MNIST 28x28, Debian dataset-fashion-mnist) or "
                                           "digits (scikit-learn 8x8).")] = "digits",
    arch: Annotated[str, typer.Option(help="lstm (raster order) or grid (2-D LSTM over left and upper "
                                           "neighbours).")] = "lstm",
    levels: Annotated[int, typer.Option(help="Intensity levels a pixel is quantised to.")] = 4,
    conditional: Annotated[bool, typer.Option("--conditional", help="Condition on the class label.")] = False,
    input_mode: Annotated[str, typer.Option(help="token (teacher forcing) or distribution (feed the previous "
                                                 "softmax's expected embedding; lstm only).")] = "token",
    out: Annotated[Path, typer.Option(help="Run directory.")] = Path("runs/pixels"),
    resume: ResumeOpt = False,
    extend: ExtendOpt = False,
    emb_dim: Annotated[int, typer.Option(help="Pixel-level embedding width.")] = 16,
    hidden: Annotated[int, typer.Option(help="LSTM width.")] = 128,
    cond_dim: Annotated[int, typer.Option(help="Class embedding width.")] = 16,
    epochs: Annotated[int, typer.Option(help="Passes over the training images.")] = 10,
    batch_size: Annotated[int, typer.Option(help="Images per step.")] = 64,
    lr: Annotated[float, typer.Option(help="Adam learning rate.")] = 2e-3,
    max_train: Annotated[int, typer.Option(help="Use only the first N training images (0 = all).")] = 0,
    max_steps: MaxStepsOpt = 0,
    checkpoint_every: Annotated[int, typer.Option(help="Also checkpoint every N steps (0 = each epoch).")] = 0,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 1,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="No progress bar.")] = False,
) -> None:
    """Train a pixel-by-pixel image generator (unconditional, or conditioned on the class)."""
    sizes = {"fashion": (28, 28), "digits": (8, 8)}
    if data not in sizes:
        raise InputError(f"--data must be fashion or digits, got {data!r}")
    h, w = sizes[data]
    from ..train.generate.pixel_data import DATASETS

    n_classes = len(DATASETS[data][2])
    _train_generator(
        ctx, "pixels", dict(data=data, out_dir=str(out), levels=levels, conditional=conditional, epochs=epochs,
             batch_size=batch_size, lr=lr, seed=seed, max_train=max_train, max_steps=max_steps,
             checkpoint_every=checkpoint_every),
        dict(unit="pixel", arch=arch, emb_dim=emb_dim, hidden=hidden, cond_dim=cond_dim, input_mode=input_mode,
             n_conditions=n_classes if conditional else 0, height=h, width=w, blocked_ids=[0, 1, 2, 3]),
        resume, extend, no_progress)


@app.command("ntm")
def ntm(
    ctx: typer.Context,
    task: Annotated[str, typer.Option(help="copy (write the input back) or recall (associative recall: the item "
                                           "after the queried one).")] = "copy",
    model: Annotated[str, typer.Option(help="ntm (Neural Turing Machine) or lstm (the baseline, one LSTM "
                                            "layer).")] = "ntm",
    controller: Annotated[str, typer.Option(help="NTM controller: lstm or feedforward.")] = "lstm",
    out: Annotated[Path, typer.Option(help="Run directory.")] = Path("runs/ntm-copy"),
    resume: ResumeOpt = False,
    extend: Annotated[bool, typer.Option("--extend", help="With --resume: train the run longer, to the new TOTAL "
                                                          "given with --steps (not a number of extra steps, so the "
                                                          "same line can be rerun after an interruption); the new "
                                                          "total is saved in config.json.")] = False,
    steps: Annotated[int, typer.Option(help="Optimizer steps (every batch is freshly generated).")] = 10000,
    max_length: Annotated[int, typer.Option(help="Longest training size: copy length or recall items (0 = the "
                                                 "task default: 10 / 6).")] = 0,
    min_length: Annotated[int, typer.Option(help="Shortest training size (0 = 1 for copy, 2 for recall).")] = 0,
    curriculum_steps: Annotated[int, typer.Option(help="Steps before the longest size grows by one (0 = reach "
                                                       "--max-length a third of the way through).")] = 0,
    batch_size: Annotated[int, typer.Option(help="Sequences per step.")] = 16,
    optimizer: Annotated[str, typer.Option(help="adam or rmsprop (momentum 0.9, as in the paper).")] = "adam",
    lr: Annotated[float, typer.Option(help="Learning rate.")] = 1e-3,
    clip: Annotated[float, typer.Option(help="Gradient norm clip (0 = off).")] = 10.0,
    controller_size: Annotated[int, typer.Option(help="NTM controller width.")] = 100,
    memory_slots: Annotated[int, typer.Option(help="NTM memory rows (enough for 4x the longest input).")] = 128,
    memory_width: Annotated[int, typer.Option(help="NTM memory row width.")] = 20,
    shift_range: Annotated[int, typer.Option(help="NTM heads move by -r..r slots a step.")] = 1,
    memory_init: Annotated[str, typer.Option(help="NTM initial memory: constant (1e-6) or learned.")] = "constant",
    emb_dim: Annotated[int, typer.Option(help="Token embedding width.")] = 32,
    inputs: Annotated[str, typer.Option(help="NTM input: embedding (one learned vector per token) or bits (the "
                                             "pattern's 8 bits as channels, as in the paper).")] = "embedding",
    lstm_hidden: Annotated[int, typer.Option(help="With --model lstm: its width (120: about the default NTM's "
                                                  "parameter count).")] = 120,
    eval_every: Annotated[int, typer.Option(help="Report loss and bit errors (and checkpoint) every N steps.")] = 250,
    checkpoint_every: Annotated[int, typer.Option(help="Also checkpoint every N steps (0 = at evaluations).")] = 0,
    seed: Annotated[int, typer.Option(help="Random seed (initialisation and the generated sequences).")] = 1,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="No progress lines.")] = False,
) -> None:
    """Train the Neural Turing Machine (or an LSTM) on copy / associative recall (Graves et al. 2014)."""
    from ..train.core.run_dir import RunLength
    from ..train.ntm.loop import NTMTaskConfig, load_ntm_task_config, train_ntm_task

    _no_extend_without_resume(extend, resume)
    try:
        cfg = NTMTaskConfig(
            task=task, model=model, controller=controller, controller_size=controller_size, memory_slots=memory_slots,
            memory_width=memory_width, shift_range=shift_range, memory_init=memory_init, emb_dim=emb_dim, inputs=inputs,
            lstm_hidden=lstm_hidden, min_size=min_length, max_size=max_length, curriculum_steps=curriculum_steps,
            steps=steps, batch_size=batch_size, optimizer=optimizer, lr=lr, clip=clip, seed=seed,
            eval_every=eval_every, checkpoint_every=checkpoint_every, out_dir=str(out))
    except ValueError as e:
        raise InputError(str(e)) from None
    if resume:
        cfg = _resumed(ctx, cfg, lambda: load_ntm_task_config(out), "ntm", extend,
                       {"min_length": ("min_size",), "max_length": ("max_size",)}, RunLength("steps", "--steps", "step"))
        if cfg is None:
            return
    run_dir = train_ntm_task(cfg, resume=resume, progress=not no_progress)
    _next_step(run_dir)


@app.command("babi")
def babi(
    ctx: typer.Context,
    tasks: Annotated[str, typer.Option(help="bAbI tasks: 1, 1,2,3, 1-20 or all (several train one network "
                                            "jointly).")] = "1",
    size: Annotated[str, typer.Option(help="Training set size: 1k or 10k (the test files are the same).")] = "1k",
    data_root: Annotated[Path | None, typer.Option(help="bAbI folder holding en/ and en-10k/ (default: "
                                                        "$EDGE_S2S_DATA/babi or ../shared/data/babi beside the "
                                                        "checkout).")] = None,
    out: Annotated[Path, typer.Option(help="Run directory.")] = Path("runs/babi"),
    resume: ResumeOpt = False,
    extend: ExtendOpt = False,
    hops: Annotated[int, typer.Option(help="Memory hops K (1 to 3).")] = 3,
    dim: Annotated[int, typer.Option(help="Embedding size d.")] = 20,
    memory_size: Annotated[int, typer.Option(help="Sentences kept in memory (the most recent).")] = 50,
    encoding: Annotated[str, typer.Option(help="Sentence encoding: pe (position encoding) or bow.")] = "pe",
    tying: Annotated[str, typer.Option(help="Weight tying: adjacent or layerwise.")] = "adjacent",
    epochs: Annotated[int, typer.Option(help="Epochs with the softmax (after the linear-start epochs).")] = 100,
    seed: Annotated[int, typer.Option(help="Random seed (split, init, order, noise).")] = 1,
    max_steps: MaxStepsOpt = 0,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="No progress bar.")] = False,
) -> None:
    """Train an End-To-End Memory Network (Sukhbaatar et al. 2015) on bAbI question answering."""
    from ..train.core.run_dir import RunLength
    from ..train.memn2n.loop import BabiRunConfig, load_babi_run_config, parse_tasks, train_babi
    from ..train.memn2n.model import MemN2NConfig

    _no_extend_without_resume(extend, resume)
    try:
        model = MemN2NConfig(hops=hops, dim=dim, memory_size=memory_size, encoding=encoding, tying=tying,
                             epochs=epochs)
        kw = {"data_root": str(data_root)} if data_root is not None else {}
        cfg = BabiRunConfig(tasks=parse_tasks(tasks), size=size, out_dir=str(out), seed=seed, model=model,
                            max_steps=max_steps, **kw)
    except ValueError as e:
        raise InputError(str(e)) from None
    if resume:
        cfg = _resumed(ctx, cfg, lambda: load_babi_run_config(out), "babi", extend,
                       length=RunLength("model.epochs", "--epochs", None))
        if cfg is None:
            return
    run_dir, _ = train_babi(cfg, progress=None if no_progress else typer.echo, resume=resume)
    _next_step(run_dir)
