"""The command line: ``python -m fmicrograd train ...`` (or ``fmicrograd train``).

``train`` fits an MLP classifier to a 2-D toy dataset and can save the model
(``fm.io`` JSON) and pictures (``fm.plot``: PNG, or the suffix's format); the defaults are
micrograd's demo: 100 moons points with noise 0.1, a 2-16-16-1 ReLU network,
hinge loss + 1e-4 L2, 100 full-batch SGD steps with learning rate
``1.0 - 0.9 * k / steps``, which reaches 100% training accuracy. SGD steps
are compiled with ``fm.jit`` (the loss over ``fm.vmap``, which compiles in a
fraction of a second) and follow the eager trajectory to 1e-12; Adam runs
eager unless ``--jit`` (see ``steps``); ``--eager`` runs the scalar
graph, to watch it. ``info`` tells which optional extras are installed.
Beside it in this package: ``validation`` (bad values, refused before training),
``runs`` (what ``--resume`` checks), ``advice`` (the diagnosis in
flags) and ``steps``. A bad value is one line on stderr and exit code 2.

>>> main(["train", "--dataset", "xor", "--optimizer", "adam", "--steps", "40", "--quiet"])
final training accuracy 100.0% (4/4 points), loss 0.0075
0
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import math
import os
import re
import shutil
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from importlib import metadata
from typing import IO, Any, NoReturn

import fmicrograd as fm
from fmicrograd import _interrupts
from fmicrograd.cli.advice import diagnose, unstable
from fmicrograd.cli.runs import (
    ADAM_LR,
    DEFAULT_NOISE,
    checkpoint_problem,
    resume_path,
    write_run_file,
)
from fmicrograd.cli.steps import accuracy, accuracy_metric, batched, compiled, loss
from fmicrograd.cli.validation import validate
from fmicrograd.train.resume import starts_afresh

__all__ = ["main", "build_parser", "accuracy"]

DATASETS = ("moons", "circles", "xor", "blobs")
LOSSES = ("hinge", "logistic", "mse")
# extra name -> (module, what it enables)
EXTRAS = (("numpy", "fast", "vmap and arrays"),
          ("matplotlib", "plot", "fm.plot, train --plot/--loss-plot"),
          ("graphviz", "viz", "fm.viz.draw_dot"),
          ("torch", "-", "fm.to_torch"))


def _sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(s) for s in text.split(","))
    except ValueError:
        sizes = ()
    if not sizes or any(s < 1 for s in sizes):
        raise argparse.ArgumentTypeError(
            f"expected comma-separated positive layer sizes such as 16,16, got {text!r}")
    return sizes


def _at_least(kind: type, low: float, strict: bool = False) -> Callable[[str], Any]:
    """An argparse type: a finite number of ``kind`` at least (or, ``strict``,
    above) ``low``; ``inf`` and ``nan`` are refused like any other bad value."""
    what = f"{'an int' if kind is int else 'a number'} {'>' if strict else '>='} {low:g}"

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or not (value > low if strict else value >= low):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
        return value

    parse.__name__ = what
    return parse


class _Parser(argparse.ArgumentParser):
    """argparse's parser, with errors on one line and exit code 2: the usage
    block it prints before them is for ``--help`` (which it keeps)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The ``fmicrograd`` argument parser (subcommands ``train`` and ``info``).

    >>> fm.cli.build_parser().parse_args(["train", "--hidden", "8,4"]).hidden
    (8, 4)
    """
    parser = _Parser(
        prog="fmicrograd", description="fmicrograd: purely functional scalar autodiff. "
        "Train a small classifier from the command line, or inspect the installation.",
        epilog="Example: fmicrograd train --dataset moons --plot moons.png --save model.json")
    parser.add_argument("--version", action="version", version=f"fmicrograd {fm.__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    t = sub.add_parser(
        "train", help="train an MLP classifier on a 2-D toy dataset",
        description="Train an MLP classifier on a 2-D toy dataset with a progress bar, then "
        "report its training accuracy and optionally save the model and pictures. The "
        "defaults are micrograd's demo (reaches 100% training accuracy in a few seconds).",
        epilog="Load a saved model with: model = fm.io.load('model.json'); model((x0, x1))")
    data = t.add_argument_group("data")
    data.add_argument("--dataset", choices=DATASETS, default="moons",
                      help="toy dataset (default: %(default)s)")
    data.add_argument("--n", "--points", type=_at_least(int, 2), default=100,
                      help="number of points (default: %(default)s; xor always has 4; "
                      "under torchrun write --points: torchrun takes --n as its own option)")
    data.add_argument("--noise", type=_at_least(float, 0.0), default=None,
                      help="noise standard deviation (default: moons 0.1, circles 0.05, "
                      "blobs 1.0)")
    data.add_argument("--seed", type=int, default=0,
                      help="seed of the data, the initial weights and the batch order "
                      "(default: %(default)s)")
    model = t.add_argument_group("model")
    model.add_argument("--hidden", type=_sizes, default=(16, 16), metavar="SIZES",
                       help="hidden layer sizes, comma-separated (default: 16,16); the "
                       "output layer has 1 unit")
    model.add_argument("--activation", choices=sorted(set(fm.nn.ACTIVATIONS) - {"linear"}),
                       default="relu",
                       help="activation of the hidden layers (default: %(default)s)")
    opt = t.add_argument_group("optimization")
    opt.add_argument("--loss", choices=LOSSES, default="hinge",
                     help="hinge (micrograd's max-margin, the default), logistic or mse")
    opt.add_argument("--l2", type=_at_least(float, 0.0), default=1e-4,
                     help="weight of the L2 penalty on the sum of squared parameters "
                     "(default: %(default)s)")
    opt.add_argument("--optimizer", choices=("sgd", "adam"), default="sgd",
                     help="optimizer (default: %(default)s)")
    opt.add_argument("--lr", type=_at_least(float, 0.0, strict=True), default=None,
                     help="learning rate; default for sgd is micrograd's schedule "
                     f"1.0 - 0.9*k/steps, for adam {ADAM_LR:g}")
    opt.add_argument("--steps", type=_at_least(int, 1), default=100,
                     help="training epochs, one step each with full batches "
                     "(default: %(default)s)")
    opt.add_argument("--eager", dest="engine", action="store_const", const="eager",
                     help="run every step on the scalar eager path, to watch it (many times "
                     "slower per step). By default sgd steps are compiled with fm.jit (a "
                     "fraction of a second to compile, the same trajectory to 1e-12), while "
                     "adam runs eager: its step lr*g/(|g|+1e-8) turns the compiled code's "
                     "different rounding of a gradient entry that is 0 up to rounding (the "
                     "output bias on balanced data) into a visibly different run")
    opt.add_argument("--jit", dest="engine", action="store_const", const="jit",
                     help="compile every step with fm.jit, adam's too (same numbers up to "
                     "rounding); the last of --eager and --jit counts")
    opt.add_argument("--batch-size", type=_at_least(int, 1), default=None, metavar="B",
                     help="examples per minibatch (default: the whole dataset)")
    opt.add_argument("--data-parallel", action="store_true",
                     help="split every batch over the processes torchrun starts (torch."
                     "distributed, gloo): torchrun --nproc-per-node 2 -m fmicrograd train "
                     "--data-parallel; rank 0 prints and writes the files")
    watch = t.add_argument_group("stability and checkpoints")
    watch.add_argument("--on-instability", choices=fm.train.POLICIES, default="warn",
                       help="what to do when training goes wrong (nan, exploding loss or "
                       "gradient, oscillation): warn and go on (the default), raise (exit 1), "
                       "stop with the last good model, or rollback to it with a 10x smaller "
                       "learning rate (at most 3 times)")
    watch.add_argument("--checkpoint-dir", metavar="DIR",
                       help="write a checkpoint (JSON, atomic) to DIR before training, every "
                       "--checkpoint-every epochs and at the end")
    watch.add_argument("--checkpoint-every", type=_at_least(int, 1), default=None, metavar="K",
                       help="epochs between checkpoints (default: 1)")
    watch.add_argument("--checkpoint-keep", type=_at_least(int, 1), default=None, metavar="N",
                       help="keep only the N latest checkpoints (default: all)")
    watch.add_argument("--resume", nargs="?", const=True, default=None, metavar="PATH",
                       help="continue from the latest checkpoint in PATH (default: the "
                       "--checkpoint-dir) with the same options, as the run's cli-run.json "
                       "there records them (checkpoints without it are refused); the result is "
                       "the uninterrupted run's, bit for bit")
    out = t.add_argument_group("output")
    out.add_argument("--save", metavar="PATH", help="save the trained model as JSON (fm.io)")
    out.add_argument("--plot", metavar="PATH",
                     help="save the decision boundary (PNG, or .jpg, .svg, .pdf ...)")
    out.add_argument("--loss-plot", metavar="PATH",
                     help="save loss and accuracy curves (PNG, or .jpg, .svg, .pdf ...)")
    out.add_argument("--log-every", type=_at_least(int, 1), default=10, metavar="K",
                     help="print loss and accuracy every K epochs, and the first and last "
                     "(default: %(default)s)")
    out.add_argument("--quiet", action="store_true",
                     help="print only the final result (and the diagnosis, if a detector fired)")
    sub.add_parser("info", help="show the version and which optional extras are installed",
                   description="Show fmicrograd's version and which optional extras are "
                   "importable.")
    return parser


# ---------------------------------------------------------------- training
def _dataset(args: argparse.Namespace) -> tuple[tuple, tuple]:
    noise = args.noise if args.noise is not None else DEFAULT_NOISE.get(args.dataset, 0.0)
    if args.dataset == "xor":
        return fm.datasets.xor()
    if args.dataset == "blobs":
        return fm.datasets.blobs(args.n, 2, std=noise, seed=args.seed)
    return getattr(fm.datasets, args.dataset)(args.n, noise, seed=args.seed)


def _optimizer(args: argparse.Namespace) -> tuple[Any, str]:
    if args.optimizer == "adam":
        lr = args.lr if args.lr is not None else ADAM_LR
        return fm.optim.adam(lr), f"adam lr {lr:g}"
    if args.lr is not None:
        return fm.optim.sgd(args.lr), f"sgd lr {args.lr:g}"
    batches = 1 if args.batch_size is None else -(-_count(args) // args.batch_size)
    steps = args.steps * batches
    schedule = fm.optim.micrograd_schedule(1.0, 0.9, steps)
    return fm.optim.sgd(schedule), f"sgd lr 1.0 - 0.9*k/{steps}"


def _count(args: argparse.Namespace) -> int:
    return 4 if args.dataset == "xor" else args.n


class _Reporter:
    """Per-epoch lines on ``out``, events as they happen, and a progress bar
    with elapsed time, rate and ETA on ``err`` when it is a terminal."""

    def __init__(self, args: argparse.Namespace, out: IO[str], err: IO[str]) -> None:
        self.args, self.out = args, out
        self.bar = (fm.train.Progress(args.steps, err) if not args.quiet and err.isatty()
                    else None)

    def __call__(self, epoch: int, params: Any, row: Any) -> None:
        steps, every = self.args.steps, self.args.log_every
        k = epoch + 1
        if not self.args.quiet and (k == 1 or k % every == 0 or k == steps):
            self.say(f"epoch {k:{len(str(steps))}d}/{steps}  loss {row['loss']:.4f}  "
                     f"accuracy {100 * row['accuracy']:5.1f}%")
        if self.bar is not None:
            self.bar.update(k, {"loss": row["loss"], "accuracy": row["accuracy"]})

    def event(self, event: Any) -> None:
        """Print a detector's event the moment it fires (not under --quiet)."""
        if self.args.quiet:
            return
        action = {"rollback": f": rolled back, learning rate now {event.get('lr_scale', 0):.3g}x "
                  "the first", "stop": ": stopped"}.get(event["action"], "")
        self.say(f"{event['kind']} at epoch {event['epoch'] + 1}: {event['message']}{action}")

    def say(self, text: str) -> None:
        if self.bar is not None:
            self.bar.clear()
        print(text, file=self.out, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _train(args: argparse.Namespace, out: IO[str], err: IO[str]) -> int:
    xs, ys = _dataset(args)
    key_model, key_batches = fm.random.split(fm.random.key(args.seed))
    model = fm.nn.MLP.init(2, [*args.hidden, 1], key=key_model, activation=args.activation)
    optimizer, opt_text = _optimizer(args)
    if not args.quiet:
        print(f"fmicrograd {fm.__version__}: {args.dataset} ({len(xs)} points), MLP "
              f"{'-'.join(map(str, (2, *args.hidden, 1)))} {args.activation} "
              f"({fm.nn.count_params(model)} parameters), {args.loss} loss"
              f"{f' + {args.l2:g} L2' if args.l2 else ''}, {opt_text}, {args.steps} epochs, "
              f"{'compiled with fm.jit' if compiled(args) else 'eager'}", file=out, flush=True)
    if args.batch_size is None:
        data: dict = {"data": [(xs, ys)]}
    else:
        data = {"data": (xs, ys), "batch_size": args.batch_size, "key": key_batches}
    start = time.perf_counter()
    reporter = _Reporter(args, out, err)
    resume = resume_path(args)
    callback: Callable[[int, Any, Any], None] = reporter
    if starts_afresh(args.checkpoint_dir, resume):
        try:
            write_run_file(args)
        except ValueError as e:
            print(f"fmicrograd train: error: {e}", file=err)
            return 2
    else:  # only once fit has accepted the checkpoint: a refused resume writes nothing
        callback = _writing_run_file_first(args, reporter)
    try:
        with warnings.catch_warnings():  # the reporter prints the events itself
            warnings.simplefilter("ignore", fm.train.InstabilityWarning)
            # (and a diverging run's numpy warnings say nothing the detectors do not)
            warnings.filterwarnings("ignore", r"(overflow|invalid value|divide by zero) "
                                    r"encountered", RuntimeWarning)
            model, history = fm.train.fit(
                loss(args, batched=batched(args, len(xs), fm.nn.count_params(model))),
                model, optimizer, epochs=args.steps,
                metrics={"accuracy": accuracy_metric(compiled(args))}, callback=callback,
                jit=compiled(args), on_instability=args.on_instability,
                on_event=reporter.event, checkpoint_dir=args.checkpoint_dir,
                checkpoint_every=args.checkpoint_every or 1, resume=resume,
                checkpoint_keep=args.checkpoint_keep,
                data_parallel=args.data_parallel, **data)
    except fm.train.InstabilityError as e:
        reporter.close()
        if _traceback_wanted():
            raise
        print(unstable(args, e), file=err)
        return 1
    except ValueError as e:  # a checkpoint that is not this run's
        reporter.close()
        if args.checkpoint_dir is None and args.resume is None:
            raise
        print(f"fmicrograd train: error: {_as_flags(str(e))}", file=err)
        return 2
    reporter.close()
    seconds = time.perf_counter() - start
    final = accuracy(model, (xs, ys))
    right = round(final * len(ys))
    final_loss = float(loss(args)(model, (xs, ys)))
    print(f"final training accuracy {100 * final:.1f}% ({right}/{len(ys)} points), loss "
          f"{final_loss:.4f}" + ("" if args.quiet else f", in {seconds:.1f} s"), file=out,
          flush=True)
    diagnosis = diagnose(args, history)
    if diagnosis:
        print(f"diagnosis: {diagnosis}", file=out, flush=True)
    if not math.isfinite(final_loss):
        print("fmicrograd: error: training diverged (the final loss is not finite); see the "
              "diagnosis above" + ("" if args.on_instability == "rollback" else
                                   ", or rerun with --on-instability rollback"), file=err)
        return 1
    return _write_outputs(args, model, history, (xs, ys), out, err)


def _writing_run_file_first(args: argparse.Namespace, callback: Callable[[int, Any, Any], None]
                            ) -> Callable[[int, Any, Any], None]:
    """``callback``, writing the run's cli-run.json before its first call:
    ``fit`` makes that call once it has accepted the checkpoint resumed from,
    and before it writes a checkpoint of its own."""
    pending = [True]

    def call(epoch: int, params: Any, row: Any) -> None:
        if pending:
            write_run_file(args)
            pending.clear()
        callback(epoch, params, row)

    return call


# fit's parameters as the flags that set them; a parameter is a whole word (not part of
# a path, a file name or a longer name such as fm.train.fit)
_FLAGS = tuple((re.compile(rf"(?<![\w./'\"-]){api}"), flag) for api, flag in (
    (r"fit\(checkpoint_dir=\.\.\.\)", "a run with --checkpoint-dir"),
    (r"epochs >= ", "--steps >= "), (r"epochs=", "--steps "), (r"epochs counts", "--steps counts"),
    (r"resume=checkpoint_dir\b", "--resume (alone)"), (r"checkpoint_dir=", "--checkpoint-dir "),
    (r"checkpoint_dir\b", "--checkpoint-dir"), (r"resume=", "--resume ")))


def _as_flags(text: str, most: int = 600) -> str:
    """A message of ``fit`` for the command line: its options as the flags
    that set them, without its leading ``fit: ``, on one line, at most
    ``most`` characters.

    >>> _as_flags("fm.train.fit: pass epochs >= 20, or a new checkpoint_dir")
    'pass --steps >= 20, or a new --checkpoint-dir'
    """
    text = re.sub(r"^(fm\.train\.)?fit: ", "", text)
    for api, flag in _FLAGS:
        text = api.sub(flag, text)
    text = " ".join(text.split())
    return text if len(text) <= most else text[:most - 5] + " ..."


def _traceback_wanted() -> bool:
    """``FMICROGRAD_TRACEBACK=1``: an error during the run shows its traceback."""
    return bool(os.environ.get("FMICROGRAD_TRACEBACK"))


def _write_outputs(args: argparse.Namespace, model: Any, history: Any, data: tuple,
                   out: IO[str], err: IO[str]) -> int:
    if args.save:
        try:
            fm.io.save(args.save, model)
        except (OSError, ValueError) as e:
            if _traceback_wanted():
                raise
            print(f"fmicrograd: error: cannot save the model: {e}", file=err)
            return 1
        if not args.quiet:
            print(f"saved the model to {args.save} (load it with fm.io.load)", file=out)
    pictures = [(args.plot, "decision boundary", lambda p: fm.plot.decision_boundary(
                    model, data[0], data[1], p, title=f"{args.dataset}: training accuracy "
                    f"{100 * accuracy(model, data):.1f}%")),
                (args.loss_plot, "loss curves", lambda p: fm.plot.loss_curve(
                    {k: history[k] for k in ("loss", "accuracy")}, p,
                    title=f"{args.dataset}, {args.optimizer}"))]
    for path, what, draw in pictures:
        if not path:
            continue
        try:
            draw(path)
        except (ImportError, OSError, ValueError) as e:
            if _traceback_wanted():
                raise
            kept = f" (the model was saved to {args.save})" if args.save else ""
            print(f"fmicrograd: error: cannot save the {what}: {e}{kept}", file=err)
            return 1
        if not args.quiet:
            print(f"saved the {what} to {path}", file=out)
    return 0


# ---------------------------------------------------------------- info
def _info(out: IO[str]) -> int:
    print(f"fmicrograd {fm.__version__} (Python {sys.version.split()[0]}, "
          f"{fm.__file__.rsplit('/', 2)[0]})", file=out)
    print("optional extras:", file=out)
    for module, extra, enables in EXTRAS:
        found = importlib.util.find_spec(module) is not None
        version = _version(module) if found else ""
        hint = f"pip install 'fmicrograd[{extra}]'" if extra != "-" else f"pip install {module}"
        state = f"yes {version}".strip() if found else f"no  ({hint})"
        print(f"  {module:<11} {state:<40} {enables}", file=out)
    dot = shutil.which("dot")
    print(f"  {'dot':<11} {('yes ' + dot) if dot else 'no  (Graphviz binary, to render)':<40} "
          "rendering fm.viz graphs", file=out)
    from ..compiler.threads import CORES, blas, cpu
    print(f"CPU: {cpu()}", file=out)
    b = blas()
    name = " ".join(v for v in (b["name"] or "not OpenBLAS", b["version"]) if v)
    kernels = f" ({b['core']} kernels)" if b["core"] else ""
    if b["forced"]:
        kernels += f", OPENBLAS_CORETYPE={b['forced']} set"
    print(f"numpy's BLAS: {name}{kernels}; compiled steps use {CORES} "
          f"core{'s' if CORES > 1 else ''}", file=out)
    if b["advice"]:
        print(f"  note: {b['advice']}", file=out)
    return 0


def _version(module: str) -> str:
    try:
        return metadata.version(module)
    except metadata.PackageNotFoundError:
        return ""


def main(argv: Sequence[str] | None = None, *, out: IO[str] | None = None,
         err: IO[str] | None = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); returns the
    exit code. Bad arguments exit with code 2, as argparse does, before any
    training; Ctrl-C gives 130 and output cut short by a closed pipe (``| head``)
    141, as for a program killed by SIGPIPE; no traceback reaches the user.

    >>> fm.cli.main(["info"], out=open(__import__("os").devnull, "w"))
    0
    """
    _interrupts.raise_on_interrupt()
    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    try:
        return _run(argv, out, err)
    except KeyboardInterrupt:
        _say(err, "\nfmicrograd: interrupted")
        return 130
    except BrokenPipeError:
        _silence(out, err, sys.stdout, sys.stderr)
        return 141
    except Exception as e:
        if _traceback_wanted():
            raise
        what = "out of memory" if isinstance(e, MemoryError) else f"{type(e).__name__}: {e}"
        _say(err, f"fmicrograd: error: {what} (set FMICROGRAD_TRACEBACK=1 to see where)")
        return 1


def _run(argv: Sequence[str] | None, out: IO[str], err: IO[str]) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "info":
        code = _info(out)
    else:
        sub = _subparser(parser, args.command)
        validate(sub, args)
        problem = checkpoint_problem(args)
        if problem:
            sub.error(problem)
        code = _train_on_ranks(sub, args, out, err) if args.data_parallel else \
            _train(args, out, err)
    out.flush()  # now, so a closed pipe is reported here and not at interpreter exit
    return code


def _train_on_ranks(parser: argparse.ArgumentParser, args: argparse.Namespace, out: IO[str],
                    err: IO[str]) -> int:
    """``--data-parallel``: one process per rank (torchrun); rank 0 alone prints and writes."""
    started = False
    try:
        started = fm.distributed.init_from_env()
        fm.distributed.group("--data-parallel")  # a RuntimeError without a process group
    except ImportError as e:
        parser.error(f"argument --data-parallel: {e}")
    except RuntimeError:
        parser.error("argument --data-parallel: start one process per rank with torchrun, "
                     "e.g. torchrun --nproc-per-node 2 -m fmicrograd train --data-parallel")
    try:
        if not fm.distributed.is_writer():
            out = err = io.StringIO()
            args.save = args.plot = args.loss_plot = None
        return _train(args, out, err)
    finally:
        if started:
            import torch.distributed

            torch.distributed.destroy_process_group()


def _subparser(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
    """The parser of subcommand ``name`` (its errors name it: ``fmicrograd train: ...``)."""
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices[name]


def _say(err: IO[str], line: str) -> None:
    try:
        print(line, file=err, flush=True)
    except (OSError, ValueError):
        pass  # stderr is gone too: exit quietly


def _silence(*streams: IO[str]) -> None:
    """Point the streams' file descriptors at /dev/null, so that the flush at
    interpreter exit does not fail again on the closed pipe."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        for stream in streams:
            try:
                os.dup2(devnull, stream.fileno())
            except (AttributeError, OSError, ValueError):
                continue  # not a real file (e.g. StringIO)
    finally:
        os.close(devnull)
