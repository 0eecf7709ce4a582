"""Click commands of the retrieval stage; ``remomask.cli`` registers them.

- ``train_retriever``    -> ``remomask train retriever``
- ``build_db``           -> ``remomask retriever build-db``
- ``evaluate_retrieval`` -> ``remomask evaluate retrieval``
- ``retrieve``           -> ``remomask retrieve "TEXT" -k 5 [--json] [--render DIR]``

Only ``click`` is imported at module level so that ``remomask --help`` stays instant; each command
imports torch and the models when it runs. User errors print one line ``error: ...`` and exit with 2.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from ..cli import UsageFailure as _Failure  # user errors: one line ``error: ...``, exit code 2

__all__ = ["train_retriever", "build_db", "evaluate_retrieval", "retrieve", "DEFAULT_MODEL"]

DEFAULT_MODEL = os.environ.get("REMOMASK_RETRIEVER", "runs/retriever_cpu/model")
"""Model folder used when ``--model`` is not given (``$REMOMASK_RETRIEVER`` or ``runs/retriever_cpu/model``)."""


def _user_errors():
    """Exception types that are the user's to fix (bad paths, configs, data, databases)."""
    from ..data.layout import DatasetError
    from ..text import TextEncoderError
    from .database import DatabaseError
    from .model import RetrieverLoadError
    from .train import TrainingError

    return (FileNotFoundError, ValueError, DatasetError, TextEncoderError, DatabaseError, RetrieverLoadError,
            TrainingError)


def _run(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except _user_errors() as exc:
        raise _Failure(str(exc)) from exc


def _threads(n: int | None) -> None:
    """Limit torch's CPU threads (1 is much faster when other jobs share the cores)."""
    if n is not None:
        if n < 1:
            raise _Failure(f"--threads must be >= 1, got {n}")
        import torch

        torch.set_num_threads(n)


_THREADS_HELP = "CPU threads for torch [default: torch's]; use 1 on a busy machine."


def _parse_sets(items: tuple[str, ...]) -> dict:
    out = {}
    for item in items:
        if "=" not in item:
            raise _Failure(f"--set takes KEY=VALUE, got {item!r}")
        key, value = item.split("=", 1)
        try:
            out[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            out[key.strip()] = value
    return out


def _load_model(path: Path, device: str):
    from .model import PartRetriever

    return PartRetriever.from_pretrained(path, device=device)


def _load_db(model, database: Path | None, model_dir: Path):
    from .database import RetrievalDatabase

    folder = database or (model_dir / "database")
    return RetrievalDatabase.load(folder, model=model)


# ---------------------------------------------------------------------------------------------------
@click.command("retriever")
@click.option("--config", "config_path", type=click.Path(path_type=Path), default=None,
              help="JSON file of RetrieverConfig fields (overrides the preset).")
@click.option("--preset", type=click.Choice(["cpu", "paper"]), default=None,
              help="Base settings [default: cpu].")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Run folder [default: runs/retriever_<preset>].")
@click.option("--dataset", default=None, help="'embedded' or a HumanML3D-layout folder.")
@click.option("--epochs", type=int, default=None)
@click.option("--batch-size", type=int, default=None, help="Per process.")
@click.option("--seed", type=int, default=None)
@click.option("--no-part-loss", is_flag=True, help="Ablation: instance loss only.")
@click.option("--no-queue", is_flag=True, help="Ablation: in-batch negatives only (TMR-style).")
@click.option("--no-filter", is_flag=True, help="Ablation: keep false negatives in the denominators.")
@click.option("--direction-guard", is_flag=True,
              help="Filter: keep close-caption negatives whose captions name other directions (left/right...).")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Any other config field (repeat).")
@click.option("--no-resume", is_flag=True, help="Start over even if OUT/checkpoint.pt exists.")
@click.option("--max-steps", type=int, default=None, help="Stop after N steps (smoke runs).")
@click.option("--max-train-samples", type=int, default=None, help="Use only the first N training samples.")
@click.option("--max-val-samples", type=int, default=None, help="Use only the first N validation samples.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option("--threads", type=int, default=None, help=_THREADS_HELP)
def train_retriever(config_path, preset, out, dataset, epochs, batch_size, seed, no_part_loss, no_queue, no_filter,
                    direction_guard, sets, no_resume, max_steps, max_train_samples, max_val_samples, quiet,
                    threads) -> None:
    """Train the part-level text-motion retriever with HBM learning (spec 4.4, 4.5).

    Selects the best epoch on the validation split and writes OUT/model (config.json,
    model.safetensors, README.md). Resumes from OUT/checkpoint.pt. Runs DDP under torchrun.
    """
    from .config import load_config
    from .train import train_retriever as train

    _threads(threads)
    overrides = _parse_sets(sets)
    for key, value in (("dataset", dataset), ("epochs", epochs), ("batch_size", batch_size), ("seed", seed)):
        if value is not None:
            overrides[key] = value
    if no_part_loss:
        overrides["part_loss"] = False
    if no_queue:
        overrides["use_queue"] = False
    if no_filter:
        overrides["filter_false_negatives"] = False
    if direction_guard:
        overrides["filter_direction_guard"] = True
    cfg = _run(load_config, config_path, preset, **overrides)
    out = out or Path("runs") / f"retriever_{cfg.preset if cfg.preset != 'custom' else 'custom'}"
    folder = _run(train, cfg, out, resume=not no_resume, max_steps=max_steps, max_train_samples=max_train_samples,
                  max_val_samples=max_val_samples, progress=not quiet)
    if int(os.environ.get("RANK", "0")) == 0:
        click.echo(str(folder))


# ---------------------------------------------------------------------------------------------------
@click.command("build-db")
@click.option("--model", "model_dir", type=click.Path(path_type=Path), default=DEFAULT_MODEL, show_default=True)
@click.option("--dataset", default="embedded", show_default=True)
@click.option("--split", default="train", show_default=True)
@click.option("--index", type=click.Choice(["flat", "ivf", "hnsw"]), default="flat", show_default=True,
              help="flat = exact inner product; ivf / hnsw = approximate (large databases).")
@click.option("--nlist", type=int, default=None, help="IVF cells [default: ~4 sqrt(N)].")
@click.option("--nprobe", type=int, default=None, help="IVF cells searched.")
@click.option("--ef-search", type=int, default=None, help="HNSW search breadth.")
@click.option("--min-length", type=int, default=0, show_default=True, help="Skip samples shorter (frames).")
@click.option("--out", type=click.Path(path_type=Path), default=None, help="[default: MODEL/database]")
@click.option("--device", default="cpu", show_default=True)
@click.option("--threads", type=int, default=None, help=_THREADS_HELP)
def build_db(model_dir, dataset, split, index, nlist, nprobe, ef_search, min_length, out, device, threads) -> None:
    """Build the retrieval database of a split with a trained retriever (spec 4.6)."""
    _threads(threads)
    from .encode import build_database

    params = {k: v for k, v in (("nlist", nlist), ("nprobe", nprobe), ("ef_search", ef_search)) if v is not None}
    model = _run(_load_model, model_dir, device)
    db = _run(build_database, model, dataset, split, index=index, index_params=params, min_length=min_length)
    folder = db.save(out or model_dir / "database")
    click.echo(f"{len(db)} entries ({db.num_motions} motions, {db.dim}-d, index {index}) -> {folder}")


# ---------------------------------------------------------------------------------------------------
def _print_metrics(res: dict) -> None:
    click.echo(f"{res.get('method', 'retriever')}  split {res['split']}  n={res['n']}  protocol "
               f"{res.get('protocol', 'database')}")
    for d in ("t2m", "m2t"):
        if res.get(d):
            click.echo(f"  {d}  " + "  ".join(f"{k} {v:.2f}" for k, v in res[d].items()))
    for name, block in res.get("label_precision", {}).get("t2m", {}).items():
        click.echo(f"  pool label precision ({name})  " + "  ".join(f"{k} {v:.2f}" for k, v in block.items()))
    if res.get("database"):
        for name in ("action", "action_style"):
            click.echo(f"  database label precision ({name})  "
                       + "  ".join(f"{k} {v:.2f}" for k, v in res["database"][name].items()))


@click.command("retrieval")
@click.option("--model", "model_dir", type=click.Path(path_type=Path), default=DEFAULT_MODEL, show_default=True)
@click.option("--dataset", default="embedded", show_default=True)
@click.option("--split", "splits", multiple=True, default=("test",), show_default=True, help="Repeat for several.")
@click.option("--protocol", type=click.Choice(["full", "batch"]), default="full", show_default=True,
              help="full = whole split as one pool (spec 10.3); batch = pools of --batch-size.")
@click.option("--batch-size", type=int, default=32, show_default=True)
@click.option("--database", type=click.Path(path_type=Path), default=None,
              help="Database folder for database label precision [default: MODEL/database if present].")
@click.option("--baseline", type=click.Choice(["text-to-text"]), default=None,
              help="Evaluate the frozen sentence encoder alone instead of a model.")
@click.option("--json", "json_out", type=click.Path(path_type=Path), default=None, help="Write results here.")
@click.option("--device", default="cpu", show_default=True)
@click.option("--threads", type=int, default=None, help=_THREADS_HELP)
def evaluate_retrieval(model_dir, dataset, splits, protocol, batch_size, database, baseline, json_out, device,
                       threads) -> None:
    """R@1/2/3/5/10, MedR (both directions) and label precision@k of a retriever (spec 10.3)."""
    _threads(threads)
    from .evaluate import evaluate_retriever, text_to_text_baseline

    results = []
    if baseline:
        for split in splits:
            results.append(_run(text_to_text_baseline, dataset, split))
    else:
        model = _run(_load_model, model_dir, device)
        db = None
        if database is not None or (model_dir / "database" / "meta.json").is_file():
            db = _run(_load_db, model, database, model_dir)
        for split in splits:
            results.append(_run(evaluate_retriever, model, dataset, split, protocol=protocol, batch_size=batch_size,
                                database=db))
    for res in results:
        _print_metrics(res)
    if json_out is not None:
        from .config import _atomic_text

        payload = results[0] if len(results) == 1 else {r["split"]: r for r in results}
        _atomic_text(json_out, json.dumps(payload, indent=2) + "\n")
        click.echo(str(json_out))


# ---------------------------------------------------------------------------------------------------
@click.command("retrieve")
@click.argument("text")
@click.option("-k", "k", type=int, default=5, show_default=True, help="Distinct motions to return.")
@click.option("--model", "model_dir", type=click.Path(path_type=Path), default=DEFAULT_MODEL, show_default=True)
@click.option("--database", type=click.Path(path_type=Path), default=None, help="[default: MODEL/database]")
@click.option("--exclude", multiple=True, help="Motion id not to return (repeat).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--render", "render_dir", type=click.Path(path_type=Path), default=None,
              help="Write a stick-figure video of each retrieved motion here.")
@click.option("--device", default="cpu", show_default=True)
def retrieve(text, k, model_dir, database, exclude, as_json, render_dir, device) -> None:
    """Retrieve the K training motions closest to TEXT (spec 4.7): captions, ids and scores."""
    if not text.strip():
        raise _Failure("TEXT is empty; give a description such as \"a person walks forward\"")
    if k < 1:
        raise _Failure(f"-k must be >= 1, got {k}")
    model = _run(_load_model, model_dir, device)
    db = _run(_load_db, model, database, model_dir)
    res = _run(db.search_text, [text], model, k, exclude=[list(exclude)] if exclude else None)
    hits = res.hits[0]
    videos = []
    if render_dir is not None:
        videos = _run(_render_hits, hits, db, render_dir)
    if as_json:
        payload = {"query": text, "k": k, "results": [h.to_dict() for h in hits]}
        if videos:
            for item, v in zip(payload["results"], videos):
                item["video"] = str(v)
        click.echo(json.dumps(payload))
        return
    for rank, h in enumerate(hits, 1):
        click.echo(f"{rank:>2}  {h.score:.3f}  {h.motion_id:<10} {h.caption}")
    for v in videos:
        click.echo(str(v))


def _render_hits(hits, db, out_dir: Path) -> list[Path]:
    import numpy as np

    from ..data.embedded import resolve_dataset
    from ..render import render_motions

    root = Path(db.info.get("root", ""))
    if not (root / "new_joint_vecs").is_dir():
        root = resolve_dataset(db.info.get("dataset", "embedded"))
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for rank, h in enumerate(hits, 1):
        src = root / "new_joint_vecs" / f"{h.motion_id}.npy"
        if not src.is_file():
            raise FileNotFoundError(f"{src} is missing: the database's dataset is not available here")
        feats = np.load(src)[h.start: h.end]
        safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in h.entry_id)
        paths.append(render_motions([feats], out_dir / f"{rank:02d}_{safe}.mp4",
                                    titles=[f"#{rank} {h.score:.3f}: {h.caption}"]))
    return paths


if __name__ == "__main__":  # pragma: no cover
    sys.exit(retrieve())
