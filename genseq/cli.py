"""The `genseq` command: parses options, calls the Python API, prints. No logic of its own.

Each command imports what it runs when it runs: `genseq --help`, `--version` and shell completion load no
torch or music21 (about 0.3 s instead of 2 s).
"""

from __future__ import annotations

import json
import math
import sys
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from genseq import __version__
from genseq.errors import GenseqError
from genseq.files import DEFAULT_RUNS
from genseq.limits import MAX_REFERENCE
from genseq.lm.config import SIZES, SampleConfig, SampleOptions, TrainConfig
from genseq.music.spans import MARKER_LENGTH
from genseq.rules import CANDIDATES

if TYPE_CHECKING:
    from genseq import api
    from genseq.api import export

app = typer.Typer(
    help="Learn to write music and text one symbol at a time.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
corpus_app = typer.Typer(help="Built-in corpora.", no_args_is_help=True)
app.add_typer(corpus_app, name="corpus")


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"genseq {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: bool = typer.Option(False, "--version", help="Print genseq's version and exit.",
                                 callback=_print_version, is_eager=True),
) -> None:
    pass

def _load_toml(ctx: typer.Context, param: typer.CallbackParam, value: Path | None) -> Path | None:
    """--config FILE: its keys become the defaults of the other options; flags given still win."""
    if value is not None:
        try:
            ctx.default_map = {k.replace("-", "_"): v for k, v in tomllib.loads(value.read_text()).items()}
        except (OSError, tomllib.TOMLDecodeError) as err:
            raise typer.BadParameter(f"cannot read {value}: {err}") from None
        unknown = set(ctx.default_map) - {p.name for p in ctx.command.params}
        if unknown:
            raise typer.BadParameter(f"{value} has unknown keys: {', '.join(sorted(unknown))}")
    return value


def _given(**options: Any) -> dict[str, Any]:
    """The options a user set: the rest keep the defaults of genseq.lm.config (one place for every default)."""
    return {key: value for key, value in options.items() if value is not None}


@app.command(no_args_is_help=False)
def train(
    source: str | None = typer.Argument(None, help="Text file, folder or glob to train on."),
    corpus: str | None = typer.Option(None, help="Built-in corpus instead of SOURCE (see `genseq corpus list`)."),
    tokenizer: str | None = typer.Option(None, help="char, abc, midi, beat or voices; guessed from the files when "
                                         "left out."),
    encoding: str = typer.Option("utf-8", help="Encoding of text sources."),
    augment: str | None = typer.Option(None, help="MIDI augmentation, e.g. transpose=-5..6,stretch=0.95..1.05."),
    size: str = typer.Option("auto", help=f"auto: the shape expected to reach the lowest validation loss in "
                             f"the budget on this machine (see --plan); or a preset: {', '.join(SIZES)} "
                             "(layers x hidden)."),
    layers: int | None = typer.Option(None, help="LSTM layers (default: planned, see --size)."),
    hidden: int | None = typer.Option(None, help="LSTM hidden size (default: planned)."),
    dropout: float | None = typer.Option(None, help="Dropout on embeddings, between layers and before the head "
                                         "(default: planned from the epochs the budget reads, 0 to 0.3).",
                                         show_default=False),
    locked_dropout: bool | None = typer.Option(None, "--locked-dropout/--token-dropout",
                                               help="One dropout mask per sequence, the same at every step "
                                               "(variational dropout), or one per token (default: locked).",
                                               show_default=False),
    tie_weights: bool = typer.Option(False, help="Share the embedding and output weights."),
    seq_len: int | None = typer.Option(None, help="Window length for truncated back-propagation through time "
                                       "(default: planned, 64).", show_default=False),
    batch_size: int | None = typer.Option(None, help="Parallel streams per step (default: planned).",
                                          show_default=False),
    lr: float | None = typer.Option(None, help="Peak learning rate of AdamW, reached after the warm-up and decayed "
                                    "on a cosine (default: planned, higher for narrow models and short runs).",
                                    show_default=False),
    warmup_steps: int | None = typer.Option(None, help="Linear warm-up steps (default: 100 or 5%% of the budget, "
                                            "whichever ends first).", show_default=False),
    weight_decay: float | None = typer.Option(None, help="AdamW weight decay (default: planned from the epochs the "
                                              "budget reads, 0.01 to 0.3).", show_default=False),
    clip: float | None = typer.Option(None, help=f"Gradient norm clipping (default {TrainConfig.grad_clip:g}).",
                                      show_default=False),
    steps: int | None = typer.Option(None, help="Budget in optimizer steps."),
    epochs: float | None = typer.Option(None, help="Budget in passes over the training split."),
    minutes: float | None = typer.Option(None, help="Budget in minutes (default 10 when no budget is given)."),
    eval_every: int | None = typer.Option(None, help="Evaluate and checkpoint every N steps "
                                          "(default: 10 times, evenly over the budget).", show_default=False),
    val_fraction: float | None = typer.Option(None, help=f"Share held out for validation "
                                              f"(default {TrainConfig.val_fraction}).", show_default=False),
    seed: int | None = typer.Option(None, help=f"Seed for initialisation, dropout and data order "
                                    f"(default {TrainConfig.seed}).", show_default=False),
    device: str = typer.Option("auto", help="auto, cpu, cuda or mps."),
    precision: str = typer.Option("auto", help="auto, fp32, bf16 or fp16."),
    name: str | None = typer.Option(None, help="Run folder name under checkpoints/ (or a path)."),
    resume: Path | None = typer.Option(
        None, help="Continue the run in this folder from its last checkpoint (a budget given here replaces its own)."
    ),
    start_from: str | None = typer.Option(
        None, "--from", help="Fine-tune this model on SOURCE: a shipped model's name (e.g. folk-abc-small), a run "
        "folder or a checkpoint; its shape and tokenizer are kept, the plan is a fine-tuning plan.",
        show_default=False),
    config: Path | None = typer.Option(
        None, help="TOML file of options (keys as option names with underscores).",
        callback=_load_toml, is_eager=True, exists=True, dir_okay=False,
    ),
    tensorboard: bool = typer.Option(False, help="Also log to RUN/tensorboard (needs the tensorboard package)."),
    sample_every: str | None = typer.Option(None, metavar="N|eval", help="Every N steps (or at every evaluation: "
                                            "eval), write a few short samples and that step's validation loss into "
                                            "RUN/samples (N: evaluates every N steps unless --eval-every is given)."),
    report: bool = typer.Option(False, help="With --sample-every: RUN/samples/index.html shows how the samples "
                                "changed."),
    plan: bool = typer.Option(False, "--plan", help="Print the planned shape, precision and schedule; train nothing."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar or messages."),
    json_output: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Train a stacked-LSTM language model.

    Examples:

      genseq train input.txt --minutes 10

      genseq train --corpus folk-abc --minutes 5

      genseq train --corpus shakespeare --minutes 5 --sample-every 200 --report

      genseq train --resume checkpoints/input-20260101-120000

      genseq train my_tunes/ --from folk-abc-small --minutes 5
    """
    from genseq import api

    model = _given(num_layers=layers, hidden_size=hidden, dropout=dropout, locked_dropout=locked_dropout,
                   tie_weights=tie_weights or None)
    options = _given(seq_len=seq_len, batch_size=batch_size, learning_rate=lr, warmup_steps=warmup_steps,
                     weight_decay=weight_decay, grad_clip=clip, steps=steps, epochs=epochs, minutes=minutes,
                     eval_every=eval_every, val_fraction=val_fraction, seed=seed,
                     device=None if device == "auto" else device, precision=None if precision == "auto" else precision)
    if plan:
        if resume is not None:
            raise GenseqError("--plan shows how a new run would train; a resumed run keeps its own plan "
                              "(see its config.json)")
        chosen = api.plan(source, corpus=corpus, tokenizer=tokenizer, encoding=encoding, augment=augment, size=size,
                          model=model, start_from=start_from, progress=not quiet, **options)
        typer.echo(json.dumps(chosen.to_dict()) if json_output else chosen.describe())
        return
    result = api.train(
        source, corpus=corpus, tokenizer=tokenizer, encoding=encoding, augment=augment, name=name, resume=resume,
        start_from=start_from, progress=not quiet, tensorboard=tensorboard, sample_every=sample_every, report=report,
        size=size, model=model, **options)
    if result.stopped_by in ("SIGINT", "SIGTERM"):
        typer.echo(f"stopped by {result.stopped_by} at step {result.progress.step}; "
                   f"resume with: genseq train --resume {result.run_dir}", err=True)
    if json_output:
        typer.echo(json.dumps({"run_dir": str(result.run_dir), "steps": result.progress.step,
                               "best_val_loss": result.progress.best_val_loss, "stopped_by": result.stopped_by}))


@app.command()
def sample(
    checkpoint: Path = typer.Argument(..., help="Checkpoint file, run folder (its best.pt) or a shipped model's "
                                    "name (e.g. folk-abc-small)."),
    length: int | None = typer.Option(None, help=f"Tokens to generate per sample (at most) (default "
                                      f"{SampleConfig.length}).", show_default=False),
    temperature: float | None = typer.Option(None, help="Sampling temperature; 0 is greedy (default: the model's own "
                                             "where its checkpoint names one, else 1.0).", show_default=False),
    top_k: int | None = typer.Option(None, help="Keep only the k most likely tokens."),
    top_p: float | None = typer.Option(None, help="Keep the smallest set of tokens with this much mass (0, 1]."),
    primer: str | None = typer.Option(None, help="Text the samples continue."),
    primer_file: Path | None = typer.Option(
        None, "--primer-file", "--primer-midi", help="File the samples continue (text, .abc, or .mid for MIDI models)."
    ),
    melody: Path | None = typer.Option(
        None, help="Voices models: harmonise this melody (.mid of one track, or .abc): it is the top voice, the "
                   "model writes the voices below, as long as the melody is."),
    candidates: int = typer.Option(
        CANDIDATES, help="With --melody: settings drawn for each one written, which keeps the one under which the "
                         "model finds the melody most likely."),
    meter: str | None = typer.Option(None, help="ABC models: the tunes' meter, e.g. 6/8 (the header is the primer)."),
    key: str | None = typer.Option(None, help="ABC models: the tunes' key, e.g. D, Dmix, Em."),
    unit_length: str | None = typer.Option(None, help="ABC models: the tunes' default note length, e.g. 1/8."),
    transpose: int = typer.Option(0, help="Move the written samples by N semitones (ABC, MIDI, MusicXML)."),
    num_samples: int | None = typer.Option(None, help=f"Samples drawn in one batch (default "
                                           f"{SampleConfig.num_samples}).", show_default=False),
    seed: int | None = typer.Option(None, help="Seed: the same seed gives the same samples."),
    stop_at_end: bool | None = typer.Option(None, "--stop-at-end/--no-stop-at-end", show_default=False,
                                            help="End a sample at the end-of-document token (default: yes)."),
    precision: str | None = typer.Option(None, help="CPU sampling precision: auto, fp32 (reproducible), bf16 or int8 "
                                         f"(default {SampleConfig.precision}).", show_default=False),
    beam_size: int | None = typer.Option(None, help="1 samples at random; N > 1 keeps the N most likely continuations "
                                         "(deterministic; not with --temperature, --top-k, --top-p) (default "
                                         f"{SampleConfig.beam_size}).", show_default=False),
    voice_leading: bool | None = typer.Option(
        None, "--voice-leading/--free-voices", show_default=False,
        help="Voices models: never draw parallel fifths or octaves, crossed voices or notes out of range "
             "(default: the model's own setting)."),
    full_bars: bool | None = typer.Option(
        None, "--full-bars/--free-bars", show_default=False,
        help="ABC models: never close a bar short of its meter or write past it (default: the model's own "
             "setting)."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Write text samples to this file."),
    output_dir: Path | None = typer.Option(None, help="Write sample-01.<txt|abc|mid>, ... into this folder."),
    wav: bool = typer.Option(False, help="Also render each music sample to WAV (with --output-dir)."),
    png: bool = typer.Option(False, help="Also draw each music sample's piano roll (with --output-dir)."),
    score: bool = typer.Option(False, help="Also engrave each music sample as SVG and MusicXML (with --output-dir)."),
    report: bool = typer.Option(False, help="Write index.html with audio, piano rolls and scores (with --output-dir)."),
    soundfont: Path | None = typer.Option(None, help="SoundFont (.sf2) for --wav instead of the built-in one."),
    force: bool = typer.Option(False, help="Overwrite existing output files."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    json_output: bool = typer.Option(False, "--json", help="Print the samples (or written files) as JSON."),
) -> None:
    """Generate from a trained model.

    Examples:

      genseq sample checkpoints/RUN/best.pt --temperature 0.8 --primer "ROMEO:" --seed 1

      genseq sample checkpoints/RUN --top-k 20 --top-p 0.95 --num-samples 4 --output out.txt

      genseq sample folk-abc-small --num-samples 4 --output-dir out/ --wav --report

      genseq sample folk-abc-small --beam-size 4 --key D --output-dir beam/

      genseq sample bach-chorales-small --melody tune.abc --num-samples 4 --output-dir harmony/
    """
    from genseq import api

    model = api.load(checkpoint)
    options = SampleOptions(length=length, temperature=temperature, top_k=top_k, top_p=top_p, num_samples=num_samples,
                            seed=seed, stop_at_end=stop_at_end, precision=precision, beam_size=beam_size,
                            voice_leading=voice_leading, full_bars=full_bars)
    outputs = _outputs(model, wav, png, score, report, soundfont, progress=not (json_output or quiet))
    prepared = api.SampleRequest(
        options, primer=primer, primer_file=primer_file, melody=melody, candidates=candidates, meter=meter, key=key,
        unit_length=unit_length, transpose=transpose, output=output, output_dir=output_dir, outputs=outputs,
        force=force).prepare(model)
    config = prepared.config
    streams = config.num_samples == 1 and config.beam_size == 1  # a beam's tokens are not final until it ends
    if sys.stdout.isatty() and streams and output is None and output_dir is None and not json_output \
            and not transpose:
        sys.stdout.write(prepared.primer or "")
        model.sample_ids(prepared.primer, on_step=lambda ids: _write_now(model.tokenizer.decode(ids[:1].tolist())),
                         **options)
        sys.stdout.write("\n")
        return
    settings = {"checkpoint": str(model.path), "primer": str(primer_file or primer or ""),
                **_given(melody=str(melody) if melody else None)}
    _draw_and_write(prepared, settings, "sampling", None if melody else config.length, json_output, quiet)


@app.command()
def infill(
    checkpoint: Path = typer.Argument(..., help="Checkpoint file, run folder (its best.pt) or a shipped model's "
                                      "name (e.g. folk-abc-small)."),
    piece: Path = typer.Argument(..., help="The piece to draw a span of again: an .abc file of one tune (ABC "
                                 "models), a .mid file (MIDI and chorale models) or a text file (text models)."),
    bars: str | None = typer.Option(None, help="ABC and MIDI models: the bars to draw again, e.g. 5-8. A tune's "
                                    "bars count as a musician counts them (a pickup is bar 0) and the fill is that "
                                    "many full bars; a MIDI file's count from 1 at its start, by its time "
                                    "signatures."),
    seconds: str | None = typer.Option(None, help="MIDI models: the seconds to draw again, e.g. 12-20 or 12.5-20."),
    beats: str | None = typer.Option(None, help="Chorale (voices) models: the beats to draw again, e.g. 9-16, counted "
                                     "from 1 at the start of the piece (a pickup's beats count)."),
    voices: str | None = typer.Option(None, help="With --beats: the voices to draw again, e.g. alto,tenor; the others "
                                      "keep their notes (default: all voices)."),
    chars: str | None = typer.Option(None, help="Text models: the characters to draw again, e.g. 120-180 (from 1, "
                                     "both included); without it, the place of a [...] marker in the text."),
    length: int | None = typer.Option(None, help=f"With a [...] marker: characters the fill holds (default "
                                      f"{MARKER_LENGTH}).", show_default=False),
    candidates: int = typer.Option(
        CANDIDATES, help="Fills drawn for each one written; the one under which the model finds the rest of the "
                         "piece most likely is kept."),
    temperature: float | None = typer.Option(None, help="Sampling temperature; 0 is greedy (default: the model's own "
                                             "where its checkpoint names one, else 1.0).", show_default=False),
    top_k: int | None = typer.Option(None, help="Keep only the k most likely tokens."),
    top_p: float | None = typer.Option(None, help="Keep the smallest set of tokens with this much mass (0, 1]."),
    num_samples: int | None = typer.Option(None, help=f"Versions of the piece written, best first (default "
                                           f"{SampleConfig.num_samples}).", show_default=False),
    seed: int | None = typer.Option(None, help="Seed: the same seed gives the same fills."),
    precision: str | None = typer.Option(None, help="CPU sampling precision: auto, fp32 (reproducible), bf16 or int8 "
                                         f"(default {SampleConfig.precision}).", show_default=False),
    output: Path | None = typer.Option(None, "--output", "-o", help="Write the versions to this file."),
    output_dir: Path | None = typer.Option(None, help="Write sample-01.<txt|abc|mid>, ... into this folder."),
    wav: bool = typer.Option(False, help="Also render each version to WAV (music models, with --output-dir)."),
    png: bool = typer.Option(False, help="Also draw each version's piano roll (music models, with --output-dir)."),
    score: bool = typer.Option(False, help="Also engrave each version as SVG and MusicXML (with --output-dir)."),
    report: bool = typer.Option(False, help="Write index.html with audio, piano rolls and scores (with --output-dir)."),
    soundfont: Path | None = typer.Option(None, help="SoundFont (.sf2) for --wav instead of the built-in one."),
    force: bool = typer.Option(False, help="Overwrite existing output files."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    json_output: bool = typer.Option(False, "--json", help="Print the versions (or written files) as JSON."),
) -> None:
    """Draw a span of a piece again, so that it joins what follows; the rest stays as written.

    Examples:

      genseq infill folk-abc-small tune.abc --bars 5-8 --num-samples 4 --output-dir refills/

      genseq infill bach-chorales-small chorale.mid --beats 9-16 --voices alto,tenor --output-dir refills/

      genseq infill checkpoints/piano piece.mid --seconds 12-20 --wav --output-dir refills/

      genseq infill shakespeare-small scene.txt --chars 120-180 --seed 1

      genseq infill shakespeare-small scene-with-a-gap.txt --length 80
    """
    from genseq import api
    from genseq.api import infill

    model = api.load(checkpoint)
    span, unit = infill.span_option(model.tokenizer.kind, bars=bars, chars=chars, beats=beats, seconds=seconds)
    options = SampleOptions(length=length, temperature=temperature, top_k=top_k, top_p=top_p, num_samples=num_samples,
                            seed=seed, precision=precision)
    outputs = _outputs(model, wav, png, score, report, soundfont, progress=not (json_output or quiet))
    prepared = api.SampleRequest(options, piece=piece, span=span, unit=unit, voices=voices, candidates=candidates,
                                 output=output, output_dir=output_dir, outputs=outputs, force=force).prepare(model)
    settings = {"checkpoint": str(model.path), "piece": str(piece),
                **_given(bars=bars, beats=beats, seconds=seconds, voices=voices, chars=chars),
                "candidates": candidates}
    _draw_and_write(prepared, settings, "infilling", prepared.config.length, json_output, quiet)


def _outputs(model: api.TrainedModel, wav: bool, png: bool, score: bool, report: bool, soundfont: Path | None,
             progress: bool) -> export.Outputs:
    """What `--output-dir` gets beside the samples (`export.Outputs`), a report judged against the model's corpus."""
    from genseq.api import export

    return export.Outputs(wav=wav, png=png, score=score, report=report,
                          soundfont=str(soundfont) if soundfont else None,
                          judge_reference=(model.info()["data"] or {}).get("corpus"), progress=progress)


def _draw_and_write(prepared: api.PreparedSample, settings: dict[str, Any], doing: str, steps: int | None,
                    json_output: bool, quiet: bool) -> None:
    """Draw a prepared request's samples under a progress bar, then write them where it asks: files in its output
    folder (with what was asked beside them, `settings` and the request's own kept in the report), a text file,
    or stdout."""
    from genseq.api import export
    from genseq.console import counting_bar
    from genseq.files import write_atomic

    request, model = prepared.request, prepared.model
    shown = not (json_output or quiet) and (request.output_dir is not None or request.output is not None)
    with counting_bar(doing, steps, enabled=shown) as advance:
        samples = prepared.draw(on_step=lambda ids: advance(1))
    if request.output_dir is not None:
        files = export.export_samples(samples, model.tokenizer, request.output_dir, request.outputs,
                                      {**settings, **prepared.settings()}, force=request.force,
                                      own_titles=request.piece is not None)
        _print_exported(files, json_output)
    elif json_output:
        typer.echo(json.dumps(samples, ensure_ascii=False))
    elif request.output is not None:
        write_atomic(request.output, "\n\n".join(samples) + "\n")
    else:
        typer.echo("\n\n".join(samples))


def _write_now(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def _print_exported(files: export.Exported, json_output: bool) -> None:
    if json_output:
        typer.echo(json.dumps({"files": files.files, "unrendered": files.unrendered,
                               "report": files.report}, default=str))
        return
    for entry in files.files:
        typer.echo("  ".join(str(v) for k, v in entry.items() if isinstance(v, Path)) or entry["name"])
    if files.unrendered:
        typer.echo(f"{files.unrendered} of {len(files.files)} tunes could not be parsed by music21 "
                   "(their text is kept)", err=True)
    if files.report is not None:
        typer.echo(f"report: {files.report}")


@app.command("eval")
def evaluate(
    checkpoint: Path = typer.Argument(..., help="Checkpoint file, run folder or a shipped model's name "
                                      "(e.g. folk-abc-small)."),
    source: str = typer.Argument(..., help="Held-out file, folder or glob."),
    encoding: str = typer.Option("utf-8", help="Encoding of text sources."),
    json_output: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Cross-entropy of a model on held-out data, in nats and bits per token.

    Example: genseq eval checkpoints/RUN/best.pt heldout.txt
    """
    from genseq import api

    model = api.load(checkpoint)
    result = model.evaluate(source, encoding=encoding)
    unit = model.tokenizer.unit
    if json_output:
        typer.echo(json.dumps({"loss_nats": result.loss, "loss_bits": result.bits, "tokens": result.tokens,
                               "unknown_tokens": result.unknown_tokens, "unit": unit}))
        return
    typer.echo(f"loss {result.loss:.3f} nats/{unit} ({result.bits:.3f} bits/{unit}) over {result.tokens:,} {unit}s"
               + (f"; {result.unknown_tokens} unknown" if result.unknown_tokens else ""))


@app.command()
def info(
    checkpoint: Path = typer.Argument(..., help="Checkpoint file, run folder or a shipped model's name "
                                      "(e.g. folk-abc-small)."),
    json_output: bool = typer.Option(False, "--json", help="Print everything as JSON."),
) -> None:
    """What a checkpoint holds: the model, what it saw, its best validation loss, seed and versions."""
    from genseq import api

    details = api.load(checkpoint).info()
    if json_output:
        typer.echo(json.dumps(details, indent=2, default=str))
        return
    model, data, progress, train_config = (details[k] or {} for k in ("model", "data", "progress", "train_config"))
    best = progress.get("best_val_loss", math.nan)
    lines = [
        f"checkpoint   {details['checkpoint']}",
        f"model        {model['num_layers']}x{model['hidden_size']} LSTM, embedding {model['embedding_size']}, "
        f"dropout {model['dropout']}{' (locked)' if model.get('locked_dropout') else ''}, tied {model['tie_weights']}, "
        f"{details['parameters']:,} parameters",
        f"tokenizer    {details['tokenizer']}, vocabulary {details['vocab_size']}",
        f"data         {data.get('corpus') or data.get('source')}: {data.get('documents')} documents, "
        f"{data.get('train_tokens', 0):,} train / {data.get('val_tokens', 0):,} validation tokens",
        *([f"fine-tuned   from {parent.get('model')} ({parent.get('checkpoint')}, step {parent.get('step')}), "
           f"{parent.get('added_symbols', 0)} symbols added"] if (parent := details.get("parent")) else []),
        f"training     {progress.get('step')} steps, {progress.get('tokens_seen', 0):,} tokens, "
        f"{progress.get('elapsed_seconds', 0) / 60:.1f} min, seed {train_config.get('seed')}",
        f"best val     {best:.4f} nats/token ({best / math.log(2):.4f} bits)",
        "versions     " + ", ".join(f"{k} {v}" for k, v in (details["versions"] or {}).items()),
        f"created      {details['created']}",
    ]
    typer.echo("\n".join(lines))


@corpus_app.command("list")
def corpus_list(json_output: bool = typer.Option(False, "--json", help="Print as JSON.")) -> None:
    """Built-in corpora with their tokenizer, document and token counts."""
    from genseq import api

    rows = api.corpus_summaries()
    if json_output:
        typer.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        counts = (f"{row['documents']:,} documents, {row['tokens']:,} tokens" if row["tokens"] is not None
                  else f"not built yet (genseq corpus build {row['name']})")
        typer.echo(f"{row['name']:<15} {row['tokenizer']:<5} {counts:<40} {row['description']}")


@corpus_app.command("build")
def corpus_build(
    name: str = typer.Argument(..., help="Built-in corpus name."),
    tokenizer: str | None = typer.Option(None, help="Tokenizer other than the recipe's."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Build a corpus and its token cache now (training does this on first use)."""
    from genseq import api

    data = api.prepare_data(corpus=name, tokenizer=tokenizer, progress=not quiet).description
    typer.echo(f"{name}: {data['documents']:,} documents, {data['train_tokens'] + data['val_tokens']:,} tokens "
               f"({data['skipped']} skipped)")


@app.command()
def encode(
    files: list[str] = typer.Argument(..., help="Files (or globs) to encode."),
    tokenizer: str | None = typer.Option(None, help="char, abc, midi, beat or voices; guessed from the files when "
                                         "left out."),
    roundtrip_dir: Path | None = typer.Option(None, help="Decode the tokens again into this folder, each file under "
                                              "its own name, and count the notes each round trip keeps."),
    limit: int = typer.Option(200, help="Tokens shown per file (0 shows all)."),
    force: bool = typer.Option(False, help="Overwrite existing files in --roundtrip-dir."),
) -> None:
    """Show the tokens of files, readable; optionally decode them again to hear what the encoding keeps.
    Files that cannot be read are skipped and counted, as in training.

    Examples:

      genseq encode song.mid other.mid --tokenizer midi

      genseq encode "folder/*.mid" --tokenizer beat --roundtrip-dir rt/
    """
    from genseq import api

    encoding = api.encode_files(files, tokenizer, roundtrip_dir, force=force)
    coder = encoding.tokenizer
    for file in encoding.files:
        shown = file.ids if limit == 0 else file.ids[:limit]
        typer.echo(f"{file.name}: {len(file.ids):,} tokens")
        typer.echo(" ".join(coder.token_name(i) for i in shown) + (" ..." if len(shown) < len(file.ids) else ""))
    for file in encoding.files if roundtrip_dir is not None else []:
        kept = f": {_kept(file.kept_notes, file.notes)}" if file.notes is not None else ""
        typer.echo(f"{file.name} -> {file.roundtrip}{kept}")
    if encoding.notes is not None:
        typer.echo(f"in all: {_kept(encoding.kept_notes, encoding.notes)}: {coder.round_trip_tolerance}")


def _kept(kept: int, notes: int) -> str:
    return f"{kept / notes:.2%} of notes kept ({kept:,}/{notes:,})"


@app.command("render")
def render_command(
    midi_file: Path = typer.Argument(..., help="MIDI file to render."),
    wav: bool = typer.Option(True, help="Write FILE.wav."),
    png: bool = typer.Option(False, help="Write FILE.png, a piano roll."),
    score: bool = typer.Option(False, help="Write FILE.svg and FILE.musicxml."),
    soundfont: Path | None = typer.Option(None, help="SoundFont (.sf2) instead of the built-in one."),
    force: bool = typer.Option(False, help="Overwrite existing output files."),
) -> None:
    """Listen to and look at a MIDI file: WAV, piano roll, score.

    Example: genseq render out/sample-01.mid --wav --png
    """
    from genseq.output import audio, engraving, plots

    if not midi_file.is_file():
        raise GenseqError(f"{midi_file}: no such MIDI file")
    wanted = [suffix for suffix, asked in ((".wav", wav), (".png", png), (".svg", score), (".musicxml", score))
              if asked]
    existing = [midi_file.with_suffix(suffix) for suffix in wanted if midi_file.with_suffix(suffix).exists()]
    if existing and not force:
        raise GenseqError(f"{existing[0]} already exists; pass --force to overwrite")
    written = []
    if wav:
        written.append(audio.midi_to_wav(midi_file, midi_file.with_suffix(".wav"), soundfont))
    if png:
        written.append(plots.piano_roll_png(midi_file, midi_file.with_suffix(".png")))
    if score:
        written.append(engraving.score_svg(midi_file, midi_file.with_suffix(".svg")))
        written.append(engraving.musicxml(midi_file, midi_file.with_suffix(".musicxml")))
    typer.echo("\n".join(str(p) for p in written))


@app.command("judge")
def judge_command(
    samples: str = typer.Argument(..., help="Folder, glob or file of .abc or .mid samples."),
    reference: str = typer.Option(..., help="Real pieces: a folder, glob or file, or a built-in corpus "
                                  "(its held-out split)."),
    training: str | None = typer.Option(None, help="Training pieces for the copying check (a built-in "
                                        "--reference brings its own training split)."),
    max_reference: int = typer.Option(MAX_REFERENCE, help="Reference pieces measured at most "
                                      "(a random subset beyond)."),
    seed: int = typer.Option(0, help="Seed of the reference subset and of its two halves (the ceiling)."),
    png_dir: Path | None = typer.Option(None, help="Write overlaid distance histograms, one PNG per feature."),
    json_output: bool = typer.Option(False, "--json", help="Print one JSON object: a key per figure."),
) -> None:
    """Judge samples against real pieces: validity, bar structure, feature overlap, chorale rules, copying.

    Examples:

      genseq judge out/ --reference folk-abc

      genseq judge "out/*.mid" --reference bach-chorales --json --png-dir plots/
    """
    from genseq.judge import histogram_pngs, judge, table

    result = judge(samples, reference, training, max_reference=max_reference, seed=seed, progress=not json_output)
    written = histogram_pngs(result, png_dir) if png_dir is not None else []
    if json_output:
        typer.echo(json.dumps(result.to_dict()))
        return
    typer.echo(table(result))
    if written:
        typer.echo(f"{len(written)} histograms in {png_dir}")


@app.command()
def runs(
    folder: Path = typer.Argument(DEFAULT_RUNS, help="Folder holding run folders."),
    json_output: bool = typer.Option(False, "--json", help="Print as JSON."),
) -> None:
    """Training runs with their best validation loss, size and data."""
    from genseq import api

    found = api.find_runs(folder)
    for name, reason in found.skipped.items():
        typer.echo(f"skipped {name}: {reason}", err=True)
    if found.skipped:
        typer.echo(f"skipped {len(found.skipped)} folder(s) that genseq did not write", err=True)
    if json_output:
        typer.echo(json.dumps(found.rows, indent=2))
        return
    for row in found.rows:
        best = f"{row['best_val_loss']:.4f}" if row["best_val_loss"] is not None else "-"
        parent = f"  (from {row['parent']})" if row["parent"] else ""
        typer.echo(f"{row['run']:<45} {best:>8}  {row['size']:<8} {row['tokenizer'] or '':<5} {row['data']}{parent}")


@app.command()
def serve(
    port: int = typer.Option(8765, help="Port to listen on."),
    runs: Path = typer.Option(DEFAULT_RUNS, help="Folder of training runs to offer; the studio keeps its "
                              "history in RUNS/studio/."),
    host: str = typer.Option("127.0.0.1", help="Address to listen on; any other than this machine's lets anyone "
                             "who can reach the port use the studio."),
) -> None:
    """A local studio in the browser: pick a model, generate, watch it write, listen, look, download.

    Examples:

      genseq serve                      # then open http://127.0.0.1:8765/

      genseq serve --runs checkpoints/ --port 9000
    """
    if not 0 < port < 65536:
        raise GenseqError(f"--port must lie in 1..65535, got {port}")
    from genseq.serve import run  # starlette and uvicorn load only for this command

    run(host=host, port=port, runs=runs)


def main() -> None:
    """Entry point: every user error is one line on stderr and exit status 2, never a traceback."""
    try:
        code = app(standalone_mode=False)
    except GenseqError as err:
        typer.echo(f"error: {err}", err=True)
        code = 2
    except typer.TyperException as err:  # typer's usage errors: bad option values, missing arguments
        context = getattr(err, "ctx", None)
        if err.format_message():  # empty when help was shown for a bare command
            hint = f" (see `{context.command_path} --help`)" if context is not None else ""
            typer.echo(f"error: {err.format_message()}{hint}", err=True)
        code = getattr(err, "exit_code", 2)
    except (typer.Abort, KeyboardInterrupt):
        typer.echo("interrupted", err=True)
        code = 130
    code = code if isinstance(code, int) else 0
    if "torch.distributed" in sys.modules:  # a command that trained may be in a process group: leave it first
        from genseq.lm.distributed import exit_process

        exit_process(code)
    sys.exit(code)
