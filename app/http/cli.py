"""`flask --app app inspect MODEL [--examples DIR]`: what h5serve reads from a model file.

Prints the input it expects, the scaling and output kind chosen and why, where the
labels came from, the accuracy under each scaling on labelled images, and a model card
to copy. Exits 1 with one line when the model or the folder cannot be used.

`flask --app app CMD` builds the app before it knows whether CMD is one of the app's
commands (and for `--help`, to list them): that build gets `commands_app()`, the
commands without the service, so `inspect OTHER.h5` loads OTHER.h5 and nothing else.
Flask's own `run`, `shell` and `routes` build the app from inside the command, and get
all of it.
"""

from __future__ import annotations

import json
from pathlib import Path

import click
from flask import Flask
from flask.cli import FlaskGroup

from app.runtime.inspection import Inspection, inspect_model
from app.runtime.labelled_folders import ExamplesError
from app.runtime.loading import ModelLoadError


def register_commands(app: Flask) -> None:
    """Add the project's commands to `flask --app app ...`."""
    app.cli.add_command(inspect_command)


def building_to_find_commands() -> bool:
    """True while `flask` itself, not one of its commands, is building the app: to look
    up a command that is not built in, or to list them all for `--help`."""
    ctx = click.get_current_context(silent=True)
    return ctx is not None and isinstance(ctx.command, FlaskGroup)


def commands_app() -> Flask:
    """An app that carries the project's commands and nothing else: no settings read,
    no model loaded, no watcher or gRPC thread started. None of the commands needs them
    (inspect loads the file it is given)."""
    app = Flask("app")
    register_commands(app)
    return app


@click.command("inspect")
@click.argument("model", type=click.Path(path_type=Path))
@click.option("--examples", type=click.Path(path_type=Path),
              help="Folder with one sub-folder of images per label.")
@click.option("--per-label", default=200, show_default=True,
              help="At most this many images from each label's folder.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead.")
def inspect_command(model: Path, examples: Path | None, per_label: int, as_json: bool) -> None:
    """Show how h5serve will serve MODEL and, given labelled images, check it."""
    try:
        found = inspect_model(model, examples, per_label)
    except (ModelLoadError, ExamplesError) as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(json.dumps(_as_dict(found), indent=2))
    else:
        click.echo(_as_text(found))


def _as_dict(found: Inspection) -> dict[str, object]:
    return {"model": found.description,
            "scores": [{"scale": s.scale, "right": s.right, "total": s.total}
                       for s in found.scores],
            "best_scale": found.best.scale if found.best else None,
            "skipped": found.skipped, "card_path": str(found.card_path), "card": found.card(),
            "labels_to_fill": found.labels_to_fill,
            "prepared": json.loads(found.prepared.to_json()) if found.prepared else None}


def _as_text(found: Inspection) -> str:
    d = found.description
    spec = d["input"]
    labels = d["labels"]
    lines = [
        f"model    {d['file']} ({d['versions']['keras_library']}; written by Keras "
        f"{d['versions']['written_by_keras'] or 'unknown'})",
        f"input    {spec['height']}x{spec['width']} {spec['color_mode']}, model input "
        f"{spec['model_input_shape']}, resize {spec['resize']}, invert {spec['invert']}",
        f"scale    {d['preprocessing']['scale']}: {d['preprocessing']['why']}",
        f"output   {d['output']}: {d['output_why']}",
        *([f"examples {d['calibration']['folder']}: {d['calibration']['summary']}"]
          if d["calibration"] else []),
        f"labels   {len(labels)} from {d['labels_from']}: {', '.join(labels[:12])}"
        + (", ..." if len(labels) > 12 else ""),
        f"runtime  {found.prepared.runtime} on this host ({found.prepared.reason}; prepared "
        f"in {found.prepared.seconds:.1f} s)" if found.prepared else
        "runtime  not prepared on this host yet: a worker prepares it at its first start",
    ]
    if found.scores:
        best = found.best
        total = found.scores[0].total
        lines += ["", f"examples {total} labelled images"
                  + (f" (labels from folder names: {', '.join(found.folder_labels)})"
                     if found.folder_labels else "")]
        lines += [f"  scale {s.scale:<10} {s.right:>5}/{s.total}  {100 * s.accuracy:5.1f} %"
                  + ("  <- best" if s is best else "") for s in found.scores]
        lines += [f"  skipped {line}" for line in found.skipped]
        if best and best.scale != d["preprocessing"]["scale"]:
            lines += [f"  the model scores better with scale {best.scale} than with "
                      f"{d['preprocessing']['scale']}: put the card below beside it"]
    lines += ["", f"card to copy ({found.card_path}):", json.dumps(found.card(), indent=2)]
    if found.labels_to_fill:
        lines += ['the model has only class indexes: replace "labels" with the class names, '
                  "in the model's output order"]
    return "\n".join(lines)
