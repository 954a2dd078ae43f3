"""fm.io.save on hostile targets and trees: never replaces a FIFO or device,
keeps an existing file's mode, takes any name the OS takes, refuses cycles,
and leaves no half-written or clobbered file when anything fails."""

import dataclasses
import os
import socket
import stat

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
