"""``remomask evaluate tokenizer | retrieval | t2m`` (docs/design.md §10).

Defaults are the bundled models, so each command runs from a fresh install. ``--json`` files are written
atomically. The first evaluation on a dataset materialises its feature cache and says where.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import click

from ._core import (NON_NEGATIVE, POSITIVE, SEED, check_device, command_line, device_option, fail, finite, group,
                    int_range, set_threads, threads_option)

__all__ = ["evaluate", "BASELINES"]

BASELINES = ("real", "real-resample", "retrieval")
"""Names accepted by ``remomask evaluate t2m --baseline``."""


@group("evaluate")
def evaluate() -> None:
    """Score a stage with the project's evaluation protocol."""


def _write_json(path: Path, payload) -> None:
    from ..files import atomic_write_text

    atomic_write_text(path, json.dumps(payload, indent=1) + "\n")


# -- tokenizer ---------------------------------------------------------------------------------------------------
def _fid_lines(rec: dict) -> list[str]:
    """The reconstruction-FID block of the printed report: a markdown table (real vs reconstructed)."""
    cols = [("fid", "FID"), ("top1", "Top1"), ("top3", "Top3"), ("mm_dist", "MM-Dist"), ("diversity", "Diversity"),
            ("mpjpe_mm", "MPJPE mm")]
    cols += [(k, k[:-4].capitalize() + " acc") for k in sorted(rec) if k.endswith("_acc")]

    def cell(stat) -> str:
        if not stat or stat.get("mean") is None:
            return "-"
        ci = stat.get("ci95")
        return f"{stat['mean']:.3f}" + (f"±{ci:.3f}" if ci is not None else "")

    return [f"reconstruction FID: split {rec['split']}, {rec['repeats']} repeats x {rec['samples_per_repeat']} "
            f"samples (protocol crops 40-196 frames, seed {rec['seed']}), evaluator `{rec['evaluator']}`, "
            f"{rec['seconds']:.0f} s",
            "| | " + " | ".join(h for _, h in cols) + " |",
            "|---" * (len(cols) + 1) + "|",
            "| real | " + " | ".join(cell(rec["reference"].get(k)) for k, _ in cols) + " |",
            "| reconstruction | " + " | ".join(cell(rec.get(k)) for k, _ in cols) + " |"]


@evaluate.command("tokenizer")
@click.option("--model", "model_dir", type=click.Path(path_type=Path), default=None,
              help="Tokenizer folder [default: the bundled model's].")
@click.option("--dataset", default="embedded", show_default=True)
@click.option("--split", default="test", show_default=True)
@click.option("--json", "json_out", type=click.Path(path_type=Path), default=None,
              help="Also write the metrics to this JSON file ('-' = stdout only JSON).")
@click.option("--batch-size", type=POSITIVE, default=32, show_default=True)
@click.option("--max-clips", type=POSITIVE, default=None, help="Evaluate on the first N clips only (not the FID).")
@click.option("--fid/--no-fid", default=None,
              help="Reconstruction FID with the T2M evaluator (docs/design.md §10.2) [default: on, skipped with a "
                   "note when the split has no captions or the evaluator does not fit the data; --fid makes that an "
                   "error].")
@click.option("--fid-repeats", type=POSITIVE, default=None,
              help="Passes of the FID protocol, mean ± CI95 [default: 3; the paper protocol uses 20].")
@click.option("--evaluator", "evaluator_dir", type=click.Path(path_type=Path), default=None,
              help="Evaluator folder for the FID and --per-action [default: the bundled one].")
@click.option("--per-action", is_flag=True,
              help="Per-action accuracy of the evaluator's action classifier on every whole clip and on its "
                   "reconstruction, with overall, rare and frequent rows (docs/data.md).")
@click.option("--rare-threshold", type=POSITIVE, default=100, show_default=True,
              help="--per-action: an action is rare below this many train segments.")
@device_option()
@threads_option()
@click.option("--no-progress", is_flag=True, help="No tqdm bars.")
def evaluate_tokenizer(model_dir, dataset, split, json_out, batch_size, max_clips, fid, fid_repeats, evaluator_dir,
                       per_action, rare_threshold, device, threads, no_progress) -> None:
    """Reconstruction metrics: MPJPE per quantiser depth, root error, contacts, codebook usage, FID."""
    from ..bundled import TOKENIZER_DIR
    from ..tokenizer.evaluate import FID_REPEATS, evaluate_tokenizer as run

    to_stdout = json_out is not None and str(json_out) == "-"
    if json_out is not None and not to_stdout and json_out.is_dir():
        raise fail(f"--json {json_out} is a directory; give a file name")
    check_device(device)
    set_threads(threads)
    metrics = run(model_dir or TOKENIZER_DIR, dataset=dataset, split=split, batch_size=batch_size, device=device,
                  max_clips=max_clips, progress=not (to_stdout or no_progress), fid=fid,
                  fid_repeats=FID_REPEATS if fid_repeats is None else fid_repeats, evaluator=evaluator_dir,
                  per_action=per_action, rare_threshold=rare_threshold)
    if to_stdout:
        click.echo(json.dumps(metrics, indent=1))
        return
    if json_out is not None:
        _write_json(json_out, metrics)
    click.echo(f"{metrics['split']}: {metrics['clips']} clips, {metrics['frames']} frames")
    click.echo("MPJPE (mm) by quantiser depth: " + ", ".join(f"q{q} {v:.1f}" for q, v in metrics["mpjpe_mm"].items()))
    click.echo(f"root error at 5 s: {metrics['root_error_5s_m']:.3f} m ({metrics['root_clips']} clips); "
               f"foot-contact accuracy {metrics['foot_contact_accuracy']:.3f}")
    for branch, layers in metrics["codebooks"].items():
        click.echo(f"codebook {branch}: usage " + ", ".join(f"{x['usage']:.2f}" for x in layers)
                   + "; perplexity " + ", ".join(f"{x['perplexity']:.0f}" for x in layers))
    if "reconstruction" in metrics:
        for line in _fid_lines(metrics["reconstruction"]):
            click.echo(line)
    elif "fid_skipped" in metrics:
        click.echo(f"reconstruction FID: skipped ({metrics['fid_skipped']}); --fid makes this an error")
    else:
        click.echo("reconstruction FID: not computed (--no-fid)")
    if "per_action" in metrics:
        for line in _reconstruction_action_lines(metrics["per_action"]):
            click.echo(line)


def _reconstruction_action_lines(res: dict) -> list[str]:
    """The per-action table of ``evaluate tokenizer --per-action``: action accuracy of real clips and of
    their reconstructions, and the ratio (reconstruction / real)."""
    def fmt(row: dict) -> str:
        ratio = "-" if row["ratio"] is None else f"{row['ratio']:.2f}"
        return f"{row['clips']} | {row['real_acc']:.3f} | {row['reconstruction_acc']:.3f} | {ratio}"

    lines = [f"action accuracy of whole clips and their reconstructions (rare: < {res['threshold']} train segments)",
             "| action | train | clips | real | reconstruction | ratio |", "|---|---|---|---|---|---|"]
    lines += [f"| {a} | {row['train']} | {fmt(row)} |" for a, row in res["per_action"].items()]
    for name in ("overall", "rare", "frequent"):
        if res[name]["clips"]:
            lines.append(f"| **{name}** | | {fmt(res[name])} |")
    if res["unknown_actions"]:
        lines.append("unknown to the classifier (left out): " + ", ".join(res["unknown_actions"]))
    return lines


# -- retrieval ---------------------------------------------------------------------------------------------------
def _print_retrieval(res: dict) -> None:
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


@evaluate.command("retrieval")
@click.option("--model", "model_dir", type=click.Path(path_type=Path), default=None,
              help="Retriever folder, or a pipeline folder [default: the bundled model's retriever].")
@click.option("--dataset", default="embedded", show_default=True)
@click.option("--split", "splits", multiple=True, default=("test",), show_default=True, help="Repeat for several.")
@click.option("--protocol", type=click.Choice(["full", "batch"]), default="full", show_default=True,
              help="full = whole split as one pool (docs/design.md §10.3); batch = pools of --batch-size.")
@click.option("--batch-size", type=POSITIVE, default=32, show_default=True)
@click.option("--database", type=click.Path(path_type=Path), default=None,
              help="Database folder for database label precision [default: the model's, if present].")
@click.option("--baseline", type=click.Choice(["text-to-text"]), default=None,
              help="Evaluate the frozen sentence encoder alone instead of a model.")
@click.option("--json", "json_out", type=click.Path(path_type=Path), default=None, help="Write results here.")
@device_option()
@threads_option()
def evaluate_retrieval(model_dir, dataset, splits, protocol, batch_size, database, baseline, json_out, device,
                       threads) -> None:
    """R@1/2/3/5/10, MedR (both directions) and label precision@k of a retriever (docs/design.md §10.3)."""
    from ..retrieval.database import RetrievalDatabase
    from ..retrieval.evaluate import evaluate_retriever, text_to_text_baseline
    from ..retrieval.model import PartRetriever
    from .retrieve import resolve_retriever

    if json_out is not None and json_out.is_dir():
        raise fail(f"--json {json_out} is a directory; give a file name")
    check_device(device)
    set_threads(threads)
    results = []
    if baseline:
        results = [text_to_text_baseline(dataset, split) for split in splits]
    else:
        retriever_dir, db_dir = resolve_retriever(model_dir, database)
        model = PartRetriever.from_pretrained(retriever_dir, device=device)
        db = RetrievalDatabase.load(db_dir, model=model) if (db_dir / "meta.json").is_file() or database else None
        results = [evaluate_retriever(model, dataset, split, protocol=protocol, batch_size=batch_size, database=db)
                   for split in splits]
    for res in results:
        _print_retrieval(res)
    if json_out is not None:
        _write_json(json_out, results[0] if len(results) == 1 else {r["split"]: r for r in results})
        click.echo(str(json_out))


# -- text to motion ----------------------------------------------------------------------------------------------
def _baseline(name: str, layout, seed: int, retriever_dir=None, database_dir=None):
    from ..evaluation.baselines import RealBaseline, RetrievalBaseline, RetrieverNearest

    if name == "real":
        return RealBaseline(layout, "disjoint", seed=seed)
    if name == "real-resample":
        return RealBaseline(layout, "resample", seed=seed)
    nearest = RetrieverNearest.from_folders(retriever_dir, database_dir)
    dim = nearest.model.feature_mean.shape[0]
    if dim != layout.skeleton.feature_dim:
        raise fail(f"the retriever works on {dim}-d motions but {layout.root} has {layout.skeleton.feature_dim}-d "
                   "ones; use a retriever trained on this dataset")
    if Path(nearest.root).resolve() != Path(layout.root).resolve():
        click.echo(f"warning: the retrieval database's motions come from {nearest.root}, the prompts from "
                   f"{layout.root}", err=True)
    return RetrievalBaseline(nearest, seed=seed, pass_labels=True)


def _model_source(model_dir: str, request_size: int | None = None, **sampling):
    from ..pipeline import load_motion_source

    extra = {} if request_size is None else {"request_size": request_size}  # None: the loader's default
    source = load_motion_source(model_dir, **extra, **sampling)
    if sampling:
        names = {"use_retrieval": "no retrieval at sampling", "wrong_neighbour": "wrong neighbour",
                 "diverse_neighbours": "diverse neighbours"}
        source.name += " (" + ", ".join(names[k] if k in names else
                                        (f"{k} {v}" if isinstance(v, str) else f"{k} {v:g}")
                                        for k, v in sampling.items()) + ")"
    return source


@evaluate.command("t2m")
@click.option("--model", "model_dir", type=click.Path(), default=None, help="Generator folder to score.")
@click.option("--baseline", "baselines", multiple=True, type=click.Choice(BASELINES),
              help="Baseline row(s) to score (repeat the option); 'real' = disjoint real clips (the ceiling), "
                   "'real-resample' = the paper's GT-with-another-crop row, 'retrieval' = the nearest train "
                   "motion of a retriever cropped to the length (see --retriever, --database).")
@click.option("--retriever", "retriever_dir", type=click.Path(), default=None,
              help="--baseline retrieval: retriever folder [default: the bundled model's].")
@click.option("--database", "database_dir", type=click.Path(), default=None,
              help="--baseline retrieval: its database folder [default: the retriever's; build one with "
                   "`remomask retriever build-db --model DIR`].")
@click.option("--split", default="test", show_default=True, help="test, test_unseen or another split file.")
@click.option("--repeats", type=POSITIVE, default=20, show_default=True, help="Full passes (mean ± CI95).")
@click.option("--seed", type=SEED, default=10107, show_default=True, help="Protocol seed; repeat r uses seed + r.")
@click.option("--dataset", default="embedded", show_default=True, help="'embedded' or a HumanML3D-layout folder.")
@click.option("--evaluator", "evaluator_dir", type=click.Path(), default=None,
              help="Evaluator folder [default: the bundled one].")
@click.option("--official", "official_ckpt", type=click.Path(), default=None,
              help="Use the standard evaluator: its text_mot_match/model/finest.tar or the release's checkpoints/ "
                   "folder (HumanML3D / KIT-ML; needs --glove).")
@click.option("--glove", "glove_dir", type=click.Path(), default=None, help="Folder of the our_vab_* GloVe files.")
@click.option("--official-mean", type=click.Path(), default=None,
              help="The standard evaluator's mean.npy [default: <checkpoints>/<t2m|kit>/Comp_v6_KLD005/meta].")
@click.option("--official-std", type=click.Path(), default=None, help="The standard evaluator's std.npy.")
@click.option("--max-batches", type=POSITIVE, default=None,
              help="Score only N random batches of 32 per repeat [default: the whole split]; compare only rows "
                   "scored with the same N (FID grows as the sample shrinks).")
@click.option("--batch-size", type=int_range(2), default=32, show_default=True,
              help="R-precision pool: each prompt's motion is ranked among this many (the protocol's 32). A split "
                   "smaller than one pool, such as test_human, needs a smaller one; compare only rows scored "
                   "with the same size (Top-k is easier in a smaller pool).")
@click.option("--mm-batches", type=NON_NEGATIVE, default=3, show_default=True,
              help="MModality: batches of prompts generated --mm-repeats times (generators only).")
@click.option("--mm-repeats", type=int_range(2), default=30, show_default=True,
              help="MModality: generations per prompt.")
@click.option("--steps", type=POSITIVE, default=None,
              help="--model: masked-decoding steps [the model's pipeline.json, else 10].")
@click.option("--cond-scale", type=finite(0.0), default=None,
              help="--model: RAG-CFG scale [the model's pipeline.json, else 4].")
@click.option("--residual-cond-scale", type=finite(0.0), default=None,
              help="--model: residual layers' CFG scale [the model's pipeline.json, else 5].")
@click.option("--text-scale", type=finite(0.0), default=None,
              help="--model: text-only guidance term of RAG-CFG's four-way form, u + s(c-u) + s_t(t-u) + s_r(r-u) "
                   "(docs/design.md §5.5) [the model's pipeline.json, else 0].")
@click.option("--retrieval-scale", type=finite(0.0), default=None,
              help="--model: retrieval-only guidance term s_r [the model's pipeline.json, else 0].")
@click.option("--retrieval-min-score", type=finite(0.0, max=1.0), default=None,
              help="--model: similarity gate, prompts whose best neighbour scores below this cosine are generated "
                   "without retrieval (docs/design.md §4.10) [the model's pipeline.json, else 0 = off].")
@click.option("--precision", type=click.Choice(["fp32", "bf16"]), default=None,
              help="--model: compute precision of the generators (bf16 = autocast) [fp32 on the CPU, bf16 on CUDA].")
@click.option("--without-retrieval", is_flag=True,
              help="--model: sample without the retrieved entries (the text-only mode that RAG-CFG's retrieval "
                   "dropout trains), to measure what retrieval adds to the same weights.")
@click.option("--wrong-neighbour", is_flag=True,
              help="--model: retrieve for each prompt with the caption of another prompt of the pass, one of another "
                   "action (robustness to a deliberately wrong neighbour; the text condition stays the prompt's).")
@click.option("--diverse-neighbours", is_flag=True,
              help="--model: fill the text-to-text retrieval slots with neighbours of other (action, style) labels "
                   "than the text-to-motion ones (docs/design.md §4.9).")
@click.option("--request-size", type=POSITIVE, default=None,
              help="--model: prompts per generator call; the pipeline groups them by length [1024: a whole "
                   "embedded test pass; 32: one batch of the protocol at a time]. Changes the random numbers "
                   "each motion draws, not what is scored.")
@click.option("--json", "json_out", type=click.Path(), default=None,
              help="Write every metric as {mean, ci95}. Finished repeats are kept in <json>.progress/ meanwhile, "
                   "so the same command resumes an interrupted run.")
@click.option("--restart", is_flag=True, help="Discard the finished repeats kept in <json>.progress/.")
@click.option("--per-action", is_flag=True,
              help="Also score every action: action-classifier accuracy and R-precision of its prompts, a 'rare' row "
                   "(actions with fewer than --rare-threshold train segments), and ReMoGPT's rare-motion metrics "
                   "(MM-Dist and Diversity of the rarest 5 %% of prompts, Balanced MM-Dist); printed after the "
                   "main table and kept in --json (docs/data.md).")
@click.option("--rare-threshold", type=POSITIVE, default=100, show_default=True,
              help="--per-action: an action is rare below this many train segments.")
@click.option("--short-clips", type=click.Choice(["drop", "hold"]), default="drop", show_default=True,
              help="'drop': the protocol's 40-199-frame samples; 'hold': also score the split's shorter samples, "
                   "extended to 40 frames with holds of their first and last pose (docs/data.md).")
@threads_option()
@click.option("--no-progress", is_flag=True, help="No tqdm bars.")
def evaluate_t2m(model_dir, baselines, retriever_dir, database_dir, split, repeats, seed, dataset, evaluator_dir,
                 official_ckpt, glove_dir, official_mean, official_std, max_batches, batch_size, mm_batches, mm_repeats, steps,
                 cond_scale, residual_cond_scale, text_scale, retrieval_scale, retrieval_min_score, precision, without_retrieval, wrong_neighbour, diverse_neighbours, request_size, json_out, restart, per_action, rare_threshold,
                 short_clips, threads, no_progress) -> None:
    """Score a generator and/or baselines with the text-to-motion protocol (docs/design.md §10.2).

    Without --model or --baseline the Real (disjoint clips) baseline is scored. With --official the
    standard HumanML3D / KIT-ML evaluator replaces remomask's (numbers comparable with the papers).
    --baseline retrieval answers each prompt with the top-1 train motion of --retriever's --database.
    With --json, an interrupted run (Ctrl-C, a lost machine) resumes where it stopped when the same command
    is run again.
    """
    sampling = {k: v for k, v in (("steps", steps), ("cond_scale", cond_scale),
                                  ("residual_cond_scale", residual_cond_scale), ("text_scale", text_scale),
                                  ("retrieval_scale", retrieval_scale), ("retrieval_min_score", retrieval_min_score),
                                  ("precision", precision)) if v is not None}
    if (sampling or request_size is not None or without_retrieval or wrong_neighbour or diverse_neighbours) \
            and not model_dir:
        raise fail("--steps / --cond-scale / --residual-cond-scale / --text-scale / --retrieval-scale / "
                   "--retrieval-min-score / --precision / --request-size / --without-retrieval / --wrong-neighbour / --diverse-neighbours set the sampling "
                   "of --model; add --model DIR")
    if without_retrieval and (retrieval_scale or retrieval_min_score is not None):
        raise fail("--retrieval-scale and --retrieval-min-score need retrieval; drop them or --without-retrieval")
    if without_retrieval and (wrong_neighbour or diverse_neighbours):
        raise fail("--wrong-neighbour and --diverse-neighbours need retrieval; drop --without-retrieval")
    if (retriever_dir or database_dir) and "retrieval" not in baselines:
        raise fail("--retriever / --database are options of --baseline retrieval; add it")
    if official_ckpt and glove_dir is None:
        raise fail("--official needs --glove DIR (the our_vab_* word vector files)")
    if json_out and Path(json_out).is_dir():
        raise fail(f"--json {json_out} is a directory; give a file name")
    set_threads(threads)

    from .._pretrained import folder_fingerprint
    from ..data.embedded import resolve_dataset
    from ..data.layout import MotionLayout
    from ..evaluation.evaluator import load_evaluator
    from ..evaluation.protocol import evaluate_t2m as run, format_table, write_json

    names = list(baselines) or ([] if model_dir else ["real"])
    layout = MotionLayout(resolve_dataset(dataset, progress=not no_progress), split, progress=False,
                          **({"min_length": 0} if short_clips == "hold" else {}))
    sources = [_baseline(n, layout, seed, retriever_dir, database_dir) for n in names]  # fail fast
    identities = [{"baseline": n, "retriever": retriever_dir, "database": database_dir} for n in names]
    if official_ckpt:
        from ..evaluation.official import OfficialT2MEvaluator

        evaluator = OfficialT2MEvaluator.from_files(official_ckpt, glove_dir, official_mean, official_std,
                                                    dataset=layout.skeleton.name)
    else:
        evaluator = load_evaluator(evaluator_dir)
    if model_dir:
        if without_retrieval:
            sampling["use_retrieval"] = False
        if wrong_neighbour:
            sampling["wrong_neighbour"] = True
        if diverse_neighbours:
            sampling["diverse_neighbours"] = True
        sources.append(_model_source(model_dir, request_size, **sampling))
        identities.append({"model": str(Path(model_dir).resolve()), "weights": folder_fingerprint(model_dir),
                           "sampling": sampling})
    progress_dir = Path(f"{json_out}.progress") if json_out else None
    if restart and progress_dir is not None:
        shutil.rmtree(progress_dir, ignore_errors=True)
    spec = None
    if per_action:
        from ..evaluation.protocol import per_action_spec

        spec = per_action_spec(layout, evaluator, threshold=rare_threshold)
    results = []
    for i, (src, identity) in enumerate(zip(sources, identities)):
        state = progress_dir / f"row{i}.json" if progress_dir is not None else None
        result = run(src, split, repeats, seed, evaluator=evaluator, layout=layout, progress=not no_progress,
                     max_batches=max_batches, batch_size=batch_size, mm_batches=mm_batches, mm_repeats=mm_repeats,
                     progress_file=state, identity=identity, per_action=spec if spec is not None else False,
                     short_clips=short_clips)
        if result.info.get("resumed_repeats"):
            click.echo(f"{result.name}: resumed {result.info['resumed_repeats']} finished repeat(s) from {state}")
        results.append(result)
    click.echo(format_table(results))
    if spec is not None:
        from ..evaluation.protocol import format_per_action

        for result in results:
            click.echo("")
            click.echo(f"per action: {result.name}")
            click.echo(format_per_action(result))
    if json_out:
        write_json(json_out, results, command=command_line("remomask evaluate t2m"), split=split,
                   repeats=repeats, seed=seed, dataset=str(layout.root))
        shutil.rmtree(progress_dir, ignore_errors=True)
        click.echo(f"wrote {json_out}")


# -- captioning --------------------------------------------------------------------------------------------------
@evaluate.command("captioning")
@click.option("--captioner", "rows", multiple=True, type=click.Choice(["retrieval", "trained", "trained-no-retrieval"]),
              default=("retrieval", "trained", "trained-no-retrieval"), show_default=True,
              help="Rows to score (repeat); the real-caption row is always added.")
@click.option("--split", "splits", multiple=True, default=("test",), show_default=True, help="Repeat for several.")
@click.option("--model", "model_dir", type=click.Path(path_type=Path), default=None,
              help="Trained captioner folder; its retriever and database also make the retrieval row "
                   "[default: the bundled one].")
@click.option("--dataset", default="embedded", show_default=True)
@click.option("--beam", type=POSITIVE, default=1, show_default=True, help="Beam size of the trained rows.")
@click.option("--max-clips", type=POSITIVE, default=None, help="Score the first N clips of each split only.")
@click.option("--seed", type=SEED, default=0, show_default=True, help="Seed of the R-precision pools.")
@click.option("--json", "json_out", type=click.Path(path_type=Path), default=None, help="Write results here.")
@threads_option()
def evaluate_captioning(rows, splits, model_dir, dataset, beam, max_clips, seed, json_out, threads) -> None:
    """BLEU@1/4, ROUGE-L, CIDEr, R-precision, MM-Dist and action naming of captioners (docs/captioning.md)."""
    from ..captioning import MotionCaptioner, RetrievalCaptioner
    from ..evaluation.captioning import evaluate_captioning as run

    if json_out is not None and json_out.is_dir():
        raise fail(f"--json {json_out} is a directory; give a file name")
    set_threads(threads)
    trained = MotionCaptioner.from_pretrained(model_dir)
    baseline = RetrievalCaptioner(trained.retriever, trained.database)
    cache: dict = {}

    def context(feats):
        if cache.get("key") is not feats:
            cache.update(key=feats, value=trained.contexts(feats))
        return cache["value"]

    makers = {
        "retrieval": lambda f: [r.caption for r in baseline.caption_results(f)],
        "trained": lambda f: [c for c, *_ in trained.caption_features(f, beam=beam, context=context(f))],
        "trained-no-retrieval": lambda f: [c for c, *_ in trained.caption_features(f, beam=beam, retrieval=False,
                                                                                    context=context(f))],
    }
    results = []
    for split in splits:
        res = run(split, {r: makers[r] for r in dict.fromkeys(rows)}, dataset=dataset, max_clips=max_clips, seed=seed)
        res["beam"] = beam
        results.append(res)
        click.echo(f"{split} ({res['clips']} clips; text metrics vs all captions of the clip, the real row vs the "
                   "others)")
        click.echo(f"{'row':<22} {'BLEU@1':>7} {'BLEU@4':>7} {'ROUGE-L':>7} {'CIDEr':>7} {'Top1':>6} {'Top3':>6} "
                   f"{'MM-Dist':>7} {'action':>6} {'s':>6}")
        for name, r in res["rows"].items():
            text = " ".join(f"{r.get(k, float('nan')):>7.3f}" for k in ("bleu1", "bleu4", "rouge_l", "cider"))
            click.echo(f"{name:<22} {text} {r['r_top1']:>6.3f} {r['r_top3']:>6.3f} {r['mm_dist']:>7.3f} "
                       f"{r['action_named']:>6.3f} {r['seconds']:>6.1f}")
    if json_out is not None:
        _write_json(json_out, results[0] if len(results) == 1 else {r["split"]: r for r in results})
        click.echo(str(json_out))
