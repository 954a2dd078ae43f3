"""fm.io.save on hostile targets and trees: never replaces a FIFO or device,
keeps an existing file's mode, takes any name the OS takes, refuses cycles,
and leaves no half-written or clobbered file when anything fails."""

import dataclasses
import os
import socket
import stat
from decimal import Decimal
from fractions import Fraction

import numpy as np
import pytest

import fmicrograd as fm

MODEL = fm.nn.MLP.init(2, [3, 1], key=fm.random.key(0))


def listing(directory):
    return sorted(p.name for p in directory.iterdir())


def test_a_fifo_is_never_replaced(tmp_path):
    fifo = tmp_path / "model.json"
    os.mkfifo(fifo)
    with pytest.raises(ValueError, match=r"model\.json is a FIFO, not a regular file"):
        fm.io.save(fifo, MODEL)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert listing(tmp_path) == ["model.json"]  # no temporary file left behind


def test_a_symlink_to_a_device_is_never_written(tmp_path):
    link = tmp_path / "model.json"
    link.symlink_to("/dev/null")
    with pytest.raises(ValueError, match="is a character device, not a regular file"):
        fm.io.save(link, MODEL)
    assert os.readlink(link) == "/dev/null" and stat.S_ISCHR(os.stat("/dev/null").st_mode)
    assert listing(tmp_path) == ["model.json"]


def test_a_socket_is_never_replaced(tmp_path):
    path = tmp_path / "s.json"
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(path))
        with pytest.raises(ValueError, match="is a socket"):
            fm.io.save(path, MODEL)
        assert stat.S_ISSOCK(os.lstat(path).st_mode)


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0,
                    reason="making a device node needs root")
def test_a_device_node_is_never_replaced(tmp_path):
    # as root, save used to replace the device itself (seen with /dev/full)
    dev = tmp_path / "null-device"
    os.mknod(dev, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # the /dev/null device
    with pytest.raises(ValueError, match="character device"):
        fm.io.save(dev, MODEL)
    with pytest.raises(ValueError, match="character device"):
        fm.io.check_writable(dev)
    assert stat.S_ISCHR(os.lstat(dev).st_mode) and listing(tmp_path) == ["null-device"]


def test_a_directory_is_an_os_error(tmp_path):
    (tmp_path / "d").mkdir()
    with pytest.raises(IsADirectoryError):
        fm.io.save(tmp_path / "d", MODEL)
    assert listing(tmp_path) == ["d"]


@pytest.mark.parametrize("mode", [0o600, 0o640, 0o444, 0o755])
def test_an_existing_file_keeps_its_permission_bits(mode, tmp_path):
    path = tmp_path / "model.json"
    path.write_text("old")
    path.chmod(mode)
    fm.io.save(path, MODEL)
    assert stat.S_IMODE(os.stat(path).st_mode) == mode
    assert fm.io.load(path) == MODEL


def test_a_new_file_gets_the_usual_mode(tmp_path):
    old = os.umask(0o027)
    try:
        fm.io.save(tmp_path / "new.json", MODEL)
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "new.json").st_mode) == 0o640


def test_a_symlink_to_a_file_is_written_through(tmp_path):
    (tmp_path / "real.json").write_text("old")
    (tmp_path / "real.json").chmod(0o600)
    (tmp_path / "link.json").symlink_to("real.json")
    fm.io.save(tmp_path / "link.json", MODEL)
    assert (tmp_path / "link.json").is_symlink()
    assert fm.io.load(tmp_path / "real.json") == MODEL
    assert stat.S_IMODE(os.stat(tmp_path / "real.json").st_mode) == 0o600


@pytest.mark.parametrize("name", [
    "m" * 250 + ".json", "n" * 255, "é" * 127, "-leading dash", "with\nnewline",
    " spaces and 'quotes' ", "\u202eunicode\u2603", ".hidden",
], ids=["250 chars", "255 chars", "254 bytes", "dash", "newline", "spaces", "unicode", "dot"])
def test_any_name_the_os_accepts(name, tmp_path):
    (tmp_path / name).write_text("the OS accepts this name")
    fm.io.save(tmp_path / name, MODEL)
    assert fm.io.load(tmp_path / name) == MODEL
    assert listing(tmp_path) == [name]


def test_bytes_paths(tmp_path):
    path = os.fsencode(tmp_path / "b.json")
    fm.io.save(path, [1.0])
    assert fm.io.load(path) == [1.0]


@dataclasses.dataclass(frozen=True)
class Holder:
    items: list


def cyclic_trees():
    a = [1.0]
    a.append(a)
    d = {"x": 1.0}
    d["self"] = {"deeper": [d]}
    holder = Holder([])
    holder.items.append({"back": holder})
    return [a, d, (1.0, a), holder]


@pytest.mark.parametrize("tree", cyclic_trees(), ids=["list", "dict", "tuple", "dataclass"])
def test_a_cyclic_tree_is_a_value_error_and_writes_nothing(tree, tmp_path):
    path = fm.io.save(tmp_path / "old.json", {"w": 1.0})
    before = path.read_bytes()
    with pytest.raises(ValueError, match="contains itself.*must not be cyclic"):
        fm.io.save(path, tree)
    assert path.read_bytes() == before and listing(tmp_path) == ["old.json"]


def test_shared_subtrees_are_not_cycles(tmp_path):
    shared = [1.0, 2.0]
    tree = {"a": shared, "b": (shared, shared)}
    assert fm.io.load(fm.io.save(tmp_path / "s.json", tree)) == tree


def test_a_bad_leaf_deep_inside_leaves_the_old_file(tmp_path):
    path = fm.io.save(tmp_path / "model.json", MODEL)
    before = path.read_bytes()
    tree = {"model": MODEL, "extra": object()}
    for _ in range(30):
        tree = {"deeper": [tree, 1.0]}
    with pytest.raises(TypeError, match=r"cannot save object .* at <root>\['deeper'\]\[0\]"):
        fm.io.save(path, tree)
    with pytest.raises(ValueError, match="too many digits"):
        fm.io.save(path, {"model": MODEL, "big": [10 ** 10000]})
    assert path.read_bytes() == before and listing(tmp_path) == ["model.json"]


@pytest.mark.parametrize("failure", [OSError("disk full"), KeyboardInterrupt()])
def test_a_failure_mid_write_leaves_the_old_file(failure, tmp_path):
    path = fm.io.save(tmp_path / "model.json", MODEL)
    path.chmod(0o604)
    before = path.read_bytes()

    def half_then_fail(f):
        f.write(before[: len(before) // 2])
        raise failure

    with pytest.raises(type(failure)):
        fm.io.atomic_write(path, half_then_fail)
    assert path.read_bytes() == before and listing(tmp_path) == ["model.json"]
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o604


def test_check_writable_finds_problems_before_any_work(tmp_path):
    assert fm.io.check_writable(tmp_path / "new.json") == tmp_path / "new.json"
    with pytest.raises(FileNotFoundError):
        fm.io.check_writable(tmp_path / "missing" / "m.json")
    (tmp_path / "file").write_text("")
    with pytest.raises(NotADirectoryError):
        fm.io.check_writable(tmp_path / "file" / "m.json")
    with pytest.raises(OSError):  # not writable, even by root
        fm.io.check_writable("/proc/m.json")
    assert listing(tmp_path) == ["file"]


# np.longdouble is float64 on some platforms (Windows, macOS arm64): nothing to round there
_LONG = np.finfo(np.longdouble).nmant > np.finfo(np.float64).nmant
_long_only = pytest.mark.skipif(not _LONG, reason="np.longdouble is float64 here")


@pytest.mark.parametrize("leaf, shown, why", [
    (Fraction(1, 3), r"Fraction\(1, 3\)", r"written as 0\.3333333333333333, off by 1\.85e-17"),
    (Decimal("0.1"), r"Decimal\('0\.1'\)", r"written as 0\.1, off by -5\.55e-18"),
    pytest.param(np.longdouble("0.1"), r"np\.longdouble\('0\.1'\)",
                 r"written as 0\.1, off by -5\.55e-18", marks=_long_only),
    (Fraction(10 ** 400), r"Fraction\(1000\.\.\.0+, 1\)", "float\\(\\) refuses it"),
    (Decimal("1e400"), r"Decimal\('1E\+400'\)", "beyond float64's range"),
    (Decimal("sNaN"), r"Decimal\('sNaN'\)", "float\\(\\) refuses it"),
], ids=["fraction", "decimal", "longdouble", "huge fraction", "huge decimal", "signaling nan"])
def test_a_number_float64_would_round_is_a_type_error_naming_it_and_writes_nothing(
        leaf, shown, why, tmp_path):
    # these were rounded to float64 without a word (Fraction(1, 3) read back as 0.333...)
    path = fm.io.save(tmp_path / "model.json", MODEL)
    before = path.read_bytes()
    tree = {"model": MODEL, "opt": {"lr": [0.5, leaf]}}
    where = r"the leaf at <root>\['opt'\]\['lr'\]\[1\] is "
    message = where + shown + r", which float64 cannot hold exactly \(.*" + why + \
        r".*convert the leaf first, e\.g\. float\(x\)"
    with pytest.raises(TypeError, match=message):
        fm.io.save(path, tree)
    with pytest.raises(TypeError, match=message):
        fm.io.dumps(tree)
    assert path.read_bytes() == before and listing(tmp_path) == ["model.json"]


@pytest.mark.parametrize("leaf", [
    Fraction(1, 2), Fraction(-3, 1024), Decimal("0.5"), Decimal("-Infinity"), Decimal("NaN"),
    np.longdouble(0.1), np.float32(0.1), np.float16(-2.5)])
def test_a_number_float64_holds_exactly_is_saved_as_that_float(leaf, tmp_path):
    loaded = fm.io.load(fm.io.save(tmp_path / "t.json", {"w": (1.0, leaf)}))["w"][1]
    assert type(loaded) is float
    assert loaded == float(leaf) or (loaded != loaded and leaf != leaf)


def test_a_checkpoint_refuses_a_parameter_float64_would_round_before_training(tmp_path):
    # fit's checkpoints are fm.io files: a Fraction parameter is refused at the first one,
    # by its place in the checkpoint (the parameters, or a copy kept for a rollback or
    # restore_best: the first one met), instead of being saved rounded
    def loss(params, batch):
        xs, ys = batch
        return fm.losses.mse([params["w"] * x for x in xs], ys)

    with pytest.raises(TypeError, match=r"the leaf at <root>\['\w*params'\]\['w'\] is "
                                        r"Fraction\(1, 3\)"):
        fm.train.fit(loss, {"w": Fraction(1, 3)}, fm.optim.sgd(0.1),
                     [((1.0, 2.0), (2.0, 4.0))], epochs=1, checkpoint_dir=tmp_path / "run")
    assert not list((tmp_path / "run").glob("*"))
