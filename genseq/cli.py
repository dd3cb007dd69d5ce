"""The `genseq` command: parses options, calls the Python API, prints. No logic of its own."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

import tomllib
import typer

from genseq import api
from genseq.errors import GenseqError

app = typer.Typer(
    help="Learn to write music and text one symbol at a time.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
corpus_app = typer.Typer(help="Built-in corpora.", no_args_is_help=True)
app.add_typer(corpus_app, name="corpus")

SIZES = {"tiny": (1, 128), "small": (2, 256), "medium": (2, 512), "large": (3, 768)}
"""--size presets: (layers, hidden)."""


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


@app.command(no_args_is_help=False)
def train(
    source: str | None = typer.Argument(None, help="Text file, folder or glob to train on."),
    corpus: str | None = typer.Option(None, help="Built-in corpus instead of SOURCE (see `genseq corpus list`)."),
    tokenizer: str | None = typer.Option(None, help="char, abc or midi; guessed from the files when left out."),
    encoding: str = typer.Option("utf-8", help="Encoding of text sources."),
    size: str | None = typer.Option(None, help=f"Size preset: {', '.join(SIZES)} (layers x hidden)."),
    layers: int | None = typer.Option(None, help="LSTM layers (default 2)."),
    hidden: int | None = typer.Option(None, help="LSTM hidden size (default 512)."),
    dropout: float = typer.Option(0.3, help="Dropout on embeddings, between layers and before the head."),
    tie_weights: bool = typer.Option(False, help="Share the embedding and output weights."),
    seq_len: int = typer.Option(128, help="Window length for truncated back-propagation through time."),
    batch_size: int = typer.Option(64, help="Parallel streams per step."),
    lr: float = typer.Option(3e-3, help="Peak learning rate (AdamW, warm-up, cosine decay)."),
    steps: int | None = typer.Option(None, help="Budget in optimizer steps."),
    epochs: float | None = typer.Option(None, help="Budget in passes over the training split."),
    minutes: float | None = typer.Option(None, help="Budget in minutes (default 10 when no budget is given)."),
    eval_every: int = typer.Option(200, help="Evaluate and checkpoint every N steps."),
    val_fraction: float = typer.Option(0.1, help="Share held out for validation."),
    seed: int = typer.Option(1337, help="Seed for initialisation, dropout and data order."),
    device: str = typer.Option("auto", help="auto, cpu, cuda or mps."),
    precision: str = typer.Option("auto", help="auto, fp32, bf16 or fp16."),
    name: str | None = typer.Option(None, help="Run folder name under checkpoints/ (or a path)."),
    resume: Path | None = typer.Option(None, help="Continue the run in this folder from its last checkpoint."),
    config: Path | None = typer.Option(
        None, help="TOML file of options (keys as option names with underscores).",
        callback=_load_toml, is_eager=True, exists=True, dir_okay=False,
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar or messages."),
    json_output: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Train a stacked-LSTM language model.

    Examples:

      genseq train input.txt --minutes 10

      genseq train --corpus folk-abc --minutes 5

      genseq train --resume checkpoints/input-20260101-120000
    """
    if size is not None and size not in SIZES:
        raise GenseqError(f"unknown --size {size!r}; use one of {', '.join(SIZES)}")
    preset_layers, preset_hidden = SIZES[size or "medium"]
    model = {"num_layers": layers or preset_layers, "hidden_size": hidden or preset_hidden,
             "dropout": dropout, "tie_weights": tie_weights}
    result = api.train(
        source, corpus=corpus, tokenizer=tokenizer, encoding=encoding, name=name, resume=resume,
        progress=not quiet, model=model, seq_len=seq_len, batch_size=batch_size, learning_rate=lr, steps=steps,
        epochs=epochs, minutes=minutes, eval_every=eval_every, val_fraction=val_fraction, seed=seed,
        device=device, precision=precision,
    )
    if result.stopped_by in ("SIGINT", "SIGTERM"):
        typer.echo(f"stopped by {result.stopped_by} at step {result.progress.step}; "
                   f"resume with: genseq train --resume {result.run_dir}", err=True)
    if json_output:
        typer.echo(json.dumps({"run_dir": str(result.run_dir), "steps": result.progress.step,
                               "best_val_loss": result.progress.best_val_loss, "stopped_by": result.stopped_by}))


@app.command()
def sample(
    checkpoint: Path = typer.Argument(..., help="Checkpoint file or run folder (its best.pt)."),
    length: int = typer.Option(1000, help="Tokens to generate per sample (at most)."),
    temperature: float = typer.Option(1.0, help="Sampling temperature; 0 is greedy."),
    top_k: int | None = typer.Option(None, help="Keep only the k most likely tokens."),
    top_p: float | None = typer.Option(None, help="Keep the smallest set of tokens with this much mass (0, 1]."),
    primer: str | None = typer.Option(None, help="Text the samples continue."),
    primer_file: Path | None = typer.Option(None, help="File the samples continue (text, .abc or .mid)."),
    num_samples: int = typer.Option(1, help="Samples drawn in one batch."),
    seed: int | None = typer.Option(None, help="Seed: the same seed gives the same samples."),
    stop_at_end: bool = typer.Option(True, help="End a sample at the end-of-document token."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Write the samples to this file."),
    output_dir: Path | None = typer.Option(None, help="Write sample-01.<ext>, ... into this folder."),
    force: bool = typer.Option(False, help="Overwrite existing output files."),
    json_output: bool = typer.Option(False, "--json", help="Print the samples as a JSON list."),
) -> None:
    """Generate from a trained model.

    Examples:

      genseq sample checkpoints/RUN/best.pt --temperature 0.8 --primer "ROMEO:" --seed 1

      genseq sample checkpoints/RUN --top-k 20 --top-p 0.95 --num-samples 4 --output out.txt
    """
    model = api.load(checkpoint)
    if primer is not None and primer_file is not None:
        raise GenseqError("give --primer or --primer-file, not both")
    primer_doc = model.tokenizer.read_primer(str(primer_file)) if primer_file is not None else primer
    if output is not None and output.exists() and not force:
        raise GenseqError(f"{output} already exists; pass --force to overwrite or pick another --output")
    options: dict[str, Any] = dict(length=length, temperature=temperature, top_k=top_k, top_p=top_p,
                                   num_samples=num_samples, seed=seed, stop_at_end=stop_at_end)
    stream = (sys.stdout.isatty() and num_samples == 1 and output is None and output_dir is None
              and not json_output and model.tokenizer.output_suffix != ".mid")
    if stream:
        sys.stdout.write(primer_doc or "")
        on_step = lambda ids: (sys.stdout.write(model.tokenizer.decode(ids[:1].tolist())), sys.stdout.flush())  # noqa: E731
        model.sample_ids(primer_doc, on_step=on_step, **options)
        sys.stdout.write("\n")
        return
    samples = model.sample(primer_doc, **options)
    if output_dir is not None:
        for path in api.write_samples(samples, model.tokenizer, output_dir, force=force):
            typer.echo(str(path))
        return
    texts = [(primer_doc or "") + s for s in samples]
    if json_output:
        typer.echo(json.dumps(texts, ensure_ascii=False))
    elif output is not None:
        output.write_text("\n\n".join(texts) + "\n", encoding="utf-8")
    else:
        typer.echo("\n\n".join(texts))


@app.command("eval")
def evaluate(
    checkpoint: Path = typer.Argument(..., help="Checkpoint file or run folder."),
    source: str = typer.Argument(..., help="Held-out file, folder or glob."),
    encoding: str = typer.Option("utf-8", help="Encoding of text sources."),
    json_output: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Cross-entropy of a model on held-out data, in nats and bits per token.

    Example: genseq eval checkpoints/RUN/best.pt heldout.txt
    """
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
    checkpoint: Path = typer.Argument(..., help="Checkpoint file or run folder."),
    json_output: bool = typer.Option(False, "--json", help="Print everything as JSON."),
) -> None:
    """What a checkpoint holds: the model, what it saw, its best validation loss, seed and versions."""
    details = api.load(checkpoint).info()
    if json_output:
        typer.echo(json.dumps(details, indent=2, default=str))
        return
    model, data, progress, train_config = (details[k] or {} for k in ("model", "data", "progress", "train_config"))
    best = progress.get("best_val_loss", math.nan)
    lines = [
        f"checkpoint   {details['checkpoint']}",
        f"model        {model['num_layers']}x{model['hidden_size']} LSTM, embedding {model['embedding_size']}, "
        f"dropout {model['dropout']}, tied {model['tie_weights']}, {details['parameters']:,} parameters",
        f"tokenizer    {details['tokenizer']}, vocabulary {details['vocab_size']}",
        f"data         {data.get('corpus') or data.get('source')}: {data.get('documents')} documents, "
        f"{data.get('train_tokens', 0):,} train / {data.get('val_tokens', 0):,} validation tokens",
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
    data = api.prepare_data(corpus=name, tokenizer=tokenizer, progress=not quiet).description
    typer.echo(f"{name}: {data['documents']:,} documents, {data['train_tokens'] + data['val_tokens']:,} tokens "
               f"({data['skipped']} skipped)")


def main() -> None:
    """Entry point: every user error is one line on stderr and exit status 2, never a traceback."""
    try:
        code = app(standalone_mode=False)
    except GenseqError as err:
        typer.echo(f"error: {err}", err=True)
        sys.exit(2)
    except typer.TyperException as err:  # typer's usage errors: bad option values, missing arguments
        context = getattr(err, "ctx", None)
        if err.format_message():  # empty when help was shown for a bare command
            hint = f" (see `{context.command_path} --help`)" if context is not None else ""
            typer.echo(f"error: {err.format_message()}{hint}", err=True)
        sys.exit(getattr(err, "exit_code", 2))
    except (typer.Abort, KeyboardInterrupt):
        typer.echo("interrupted", err=True)
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)
