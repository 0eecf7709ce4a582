"""Click commands of the evaluation stage; ``remomask.cli`` registers them.

- ``train_evaluator``: ``remomask train evaluator`` trains the embedded-dataset evaluator and its label
  classifiers (:mod:`.training`).
- ``evaluate_t2m``: ``remomask evaluate t2m`` scores a generator or a baseline with the protocol of
  spec 10.2 (:mod:`.protocol`), prints a paper-style table and writes JSON. ``--baseline retrieval``
  loads a trained retriever (``--retriever``, default the bundled ``retriever_cpu``) and its database
  (``--database``, default ``<retriever>/database``) into :class:`.baselines.RetrieverNearest`.

Only ``click`` is imported at module level, so ``remomask --help`` stays instant; torch and the models
are imported inside the commands. Bad input ends with one ``error: ...`` line and exit code 2.
"""

from __future__ import annotations

import shlex
import shutil
import sys
from pathlib import Path

import click

__all__ = ["train_evaluator", "evaluate_t2m", "BASELINES"]

BASELINES = ("real", "real-resample", "retrieval")
"""Names accepted by ``--baseline``."""


class _UsageFailure(click.ClickException):
    exit_code = 2

    def show(self, file=None) -> None:  # one clear line, no traceback
        click.echo(f"error: {self.format_message()}", err=True)


def _user_errors() -> tuple[type[BaseException], ...]:
    from ..data.layout import DatasetError
    from .baselines import BaselineError
    from .evaluator import EvaluatorError
    from .metrics import MetricError
    from .protocol import ProtocolError
    from ..text import TextEncoderError

    # ValueError: what the generator pipeline raises for a bad model folder or sampling setting
    return (DatasetError, EvaluatorError, ProtocolError, BaselineError, MetricError, FileNotFoundError,
            TextEncoderError, ValueError)


def _command_line(canonical: str) -> str:
    """``canonical`` (e.g. ``"remomask train evaluator"``) followed by this command's own arguments."""
    ctx = click.get_current_context(silent=True)
    args = sys.argv[1:]
    if ctx is not None and ctx.info_name in args:
        args = args[args.index(ctx.info_name) + 1:]
    return " ".join([canonical, *(shlex.quote(a) for a in args)])


@click.command("evaluator")
@click.option("--out", type=click.Path(), default=None,
              help="Folder for the trained evaluator [default: the package's assets/models/evaluator].")
@click.option("--work-dir", type=click.Path(), default="runs/evaluator", show_default=True,
              help="Checkpoints (resume) and TensorBoard logs.")
@click.option("--dataset", default="embedded", show_default=True, help="'embedded' or a HumanML3D-layout folder.")
@click.option("--epochs", type=int, default=None, help="Contrastive epochs [default: config, 8].")
@click.option("--classifier-epochs", type=int, default=None, help="Label classifier epochs [default: config, 10].")
@click.option("--batch-size", type=int, default=None, help="Batch size [default: config, 64].")
@click.option("--seed", type=int, default=None, help="Training seed [default: config, 2718].")
@click.option("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice).")
@click.option("--resume", is_flag=True, help="Continue from <work-dir>/checkpoint.pt.")
@click.option("--no-progress", is_flag=True, help="No tqdm bars.")
def train_evaluator(out, work_dir, dataset, epochs, classifier_epochs, batch_size, seed, threads, resume,
                    no_progress) -> None:
    """Train the text-motion evaluator and the action/style classifiers (used only for metrics)."""
    try:
        import torch

        from .evaluator import DEFAULT_EVALUATOR_DIR, EvaluatorConfig
        from .training import train_evaluator as train

        if threads:
            torch.set_num_threads(threads)
        overrides = {k: v for k, v in dict(dataset=dataset, epochs=epochs, classifier_epochs=classifier_epochs,
                                           batch_size=batch_size, seed=seed).items() if v is not None}
        config = EvaluatorConfig(**overrides)
        train(config, out or DEFAULT_EVALUATOR_DIR, work_dir=work_dir, resume=resume, progress=not no_progress,
              command=_command_line("remomask train evaluator"), log=click.echo)
    except _user_errors() as exc:
        raise _UsageFailure(str(exc)) from exc


def _retrieval_baseline(layout, retriever_dir, database_dir, seed: int):
    """The retrieval-only row (issue 6): the nearest train motion of a retriever, cropped to the length.

    Raises:
        _UsageFailure: the database's motions are not of the evaluated dataset's feature size.
        BaselineError: from :meth:`RetrieverNearest.from_folders` (missing database: names build-db).
    """
    from pathlib import Path

    from .baselines import RetrievalBaseline, RetrieverNearest

    nearest = RetrieverNearest.from_folders(retriever_dir, database_dir)
    dim = nearest.model.feature_mean.shape[0]
    if dim != layout.skeleton.feature_dim:
        raise _UsageFailure(f"the retriever works on {dim}-d motions but {layout.root} has "
                            f"{layout.skeleton.feature_dim}-d ones; use a retriever trained on this dataset")
    if Path(nearest.root).resolve() != Path(layout.root).resolve():
        click.echo(f"warning: the retrieval database's motions come from {nearest.root}, the prompts from "
                   f"{layout.root}", err=True)
    return RetrievalBaseline(nearest, seed=seed, pass_labels=True)


def _baseline(name: str, layout, seed: int, retriever_dir=None, database_dir=None):
    from .baselines import RealBaseline

    if name == "real":
        return RealBaseline(layout, "disjoint", seed=seed)
    if name == "real-resample":
        return RealBaseline(layout, "resample", seed=seed)
    return _retrieval_baseline(layout, retriever_dir, database_dir, seed)


def _model_source(model_dir: str, request_size: int | None = None, **sampling):
    try:
        from .. import pipeline  # type: ignore[attr-defined]
    except ImportError as exc:
        raise _UsageFailure(f"--model {model_dir}: the generator pipeline (remomask.pipeline) is not available "
                            "in this version; score a baseline with --baseline") from exc
    loader = getattr(pipeline, "load_motion_source", None)
    if loader is None:
        raise _UsageFailure("remomask.pipeline has no load_motion_source(model_dir); update remomask")
    extra = {} if request_size is None else {"request_size": request_size}  # None: the loader's default
    source = loader(model_dir, **extra, **sampling)
    if sampling:
        source.name += " (" + ", ".join("no retrieval at sampling" if k == "use_retrieval" else f"{k} {v:g}"
                                        for k, v in sampling.items()) + ")"
    return source


@click.command("t2m")
@click.option("--model", "model_dir", type=click.Path(), default=None, help="Generator folder to score.")
@click.option("--baseline", "baselines", multiple=True, type=click.Choice(BASELINES),
              help="Baseline row(s) to score (repeat the option); 'real' = disjoint real clips (the ceiling), "
                   "'real-resample' = the paper's GT-with-another-crop row, 'retrieval' = the nearest train "
                   "motion of a retriever cropped to the length (see --retriever, --database).")
@click.option("--retriever", "retriever_dir", type=click.Path(), default=None,
              help="--baseline retrieval: retriever folder [default: the bundled retriever_cpu].")
@click.option("--database", "database_dir", type=click.Path(), default=None,
              help="--baseline retrieval: its database folder [default: <retriever>/database; build it with "
                   "`remomask retriever build-db --model DIR`].")
@click.option("--split", default="test", show_default=True, help="test, test_unseen or another split file.")
@click.option("--repeats", type=int, default=20, show_default=True, help="Full passes (mean ± CI95).")
@click.option("--seed", type=int, default=10107, show_default=True, help="Protocol seed; repeat r uses seed + r.")
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
@click.option("--max-batches", type=int, default=None,
              help="Score only N random batches of 32 per repeat [default: the whole split]; compare only rows "
                   "scored with the same N (FID grows as the sample shrinks).")
@click.option("--mm-batches", type=int, default=3, show_default=True,
              help="MModality: batches of prompts generated --mm-repeats times (generators only).")
@click.option("--mm-repeats", type=int, default=30, show_default=True, help="MModality: generations per prompt.")
@click.option("--steps", type=int, default=None,
              help="--model: masked-decoding steps [the model's pipeline.json, else 10].")
@click.option("--cond-scale", type=float, default=None,
              help="--model: RAG-CFG scale [the model's pipeline.json, else 4].")
@click.option("--without-retrieval", is_flag=True,
              help="--model: sample without the retrieved entries (the text-only mode that RAG-CFG's retrieval "
                   "dropout trains), to measure what retrieval adds to the same weights.")
@click.option("--request-size", type=int, default=None,
              help="--model: prompts per generator call; the pipeline groups them by length [1024: a whole "
                   "embedded test pass; 32: one batch of the protocol at a time]. Changes the random numbers "
                   "each motion draws, not what is scored.")
@click.option("--json", "json_out", type=click.Path(), default=None,
              help="Write every metric as {mean, ci95}. Finished repeats are kept in <json>.progress/ meanwhile, "
                   "so the same command resumes an interrupted run.")
@click.option("--restart", is_flag=True, help="Discard the finished repeats kept in <json>.progress/.")
@click.option("--threads", type=int, default=None, help="torch CPU threads.")
@click.option("--no-progress", is_flag=True, help="No tqdm bars.")
def evaluate_t2m(model_dir, baselines, retriever_dir, database_dir, split, repeats, seed, dataset, evaluator_dir,
                 official_ckpt, glove_dir, official_mean, official_std, max_batches, mm_batches, mm_repeats, steps,
                 cond_scale, without_retrieval, request_size, json_out, restart, threads, no_progress) -> None:
    """Score a generator and/or baselines with the text-to-motion protocol (spec 10.2).

    Without --model or --baseline the Real (disjoint clips) baseline is scored. With --official the
    standard HumanML3D / KIT-ML evaluator replaces remomask's (numbers comparable with the papers).
    --baseline retrieval answers each prompt with the top-1 train motion of --retriever's --database.
    With --json, an interrupted run (Ctrl-C, a lost machine) resumes where it stopped when the same command
    is run again.
    """
    try:
        import torch

        from ..data.embedded import resolve_dataset
        from ..data.layout import MotionLayout
        from .._pretrained import folder_fingerprint
        from .evaluator import load_evaluator
        from .protocol import evaluate_t2m as run, format_table, write_json

        if threads:
            torch.set_num_threads(threads)
        if repeats < 1:
            raise _UsageFailure(f"--repeats must be >= 1, got {repeats}")
        for flag, value, low in (("--max-batches", max_batches, 1), ("--mm-batches", mm_batches, 0),
                                 ("--mm-repeats", mm_repeats, 2), ("--steps", steps, 1),
                                 ("--request-size", request_size, 1)):
            if value is not None and value < low:
                raise _UsageFailure(f"{flag} must be >= {low}, got {value}")
        if (steps is not None or cond_scale is not None or request_size is not None or without_retrieval) \
                and not model_dir:
            raise _UsageFailure("--steps / --cond-scale / --request-size / --without-retrieval set the sampling of "
                                "--model; add --model DIR")
        if (retriever_dir or database_dir) and "retrieval" not in baselines:
            raise _UsageFailure("--retriever / --database are options of --baseline retrieval; add it")
        names = list(baselines) or ([] if model_dir else ["real"])
        layout = MotionLayout(resolve_dataset(dataset, progress=not no_progress), split, progress=False)
        sources = [_baseline(n, layout, seed, retriever_dir, database_dir) for n in names]  # fail fast
        identities = [{"baseline": n, "retriever": retriever_dir, "database": database_dir} for n in names]
        if official_ckpt:
            from .official import OfficialT2MEvaluator

            if glove_dir is None:
                raise _UsageFailure("--official needs --glove DIR (the our_vab_* word vector files)")
            evaluator = OfficialT2MEvaluator.from_files(official_ckpt, glove_dir, official_mean, official_std,
                                                        dataset=layout.skeleton.name)
        else:
            evaluator = load_evaluator(evaluator_dir)
        if model_dir:
            sampling = {k: v for k, v in (("steps", steps), ("cond_scale", cond_scale)) if v is not None}
            if without_retrieval:
                sampling["use_retrieval"] = False
            sources.append(_model_source(model_dir, request_size, **sampling))
            identities.append({"model": str(Path(model_dir).resolve()), "weights": folder_fingerprint(model_dir),
                               "sampling": sampling})
        progress_dir = Path(f"{json_out}.progress") if json_out else None
        if restart and progress_dir is not None:
            shutil.rmtree(progress_dir, ignore_errors=True)
        results = []
        for i, (src, identity) in enumerate(zip(sources, identities)):
            state = progress_dir / f"row{i}.json" if progress_dir is not None else None
            result = run(src, split, repeats, seed, evaluator=evaluator, layout=layout, progress=not no_progress,
                         max_batches=max_batches, mm_batches=mm_batches, mm_repeats=mm_repeats,
                         progress_file=state, identity=identity)
            if result.info.get("resumed_repeats"):
                click.echo(f"{result.name}: resumed {result.info['resumed_repeats']} finished repeat(s) from {state}")
            results.append(result)
        click.echo(format_table(results))
        if json_out:
            write_json(json_out, results, command=_command_line("remomask evaluate t2m"), split=split,
                       repeats=repeats, seed=seed, dataset=str(layout.root))
            shutil.rmtree(progress_dir, ignore_errors=True)
            click.echo(f"wrote {json_out}")
    except _user_errors() as exc:
        raise _UsageFailure(str(exc)) from exc


@click.group()
def _standalone() -> None:
    """Evaluation commands (also registered in `remomask train` / `remomask evaluate`)."""


_standalone.add_command(train_evaluator, "train-evaluator")
_standalone.add_command(evaluate_t2m, "evaluate-t2m")

if __name__ == "__main__":  # pragma: no cover
    _standalone()
