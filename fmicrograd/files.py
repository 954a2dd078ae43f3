"""Files written atomically and read only when regular: what ``fm.io`` and
``fm.plot`` use to touch the disk.

A write goes to a fresh temporary file in the same directory and is moved
onto the name in one step, so a failure at any moment leaves the old file as
it was; an existing file keeps its permission bits; a FIFO, device or socket
is never replaced; a read never blocks on a FIFO.

>>> import tempfile, pathlib
>>> path = atomic_write(pathlib.Path(tempfile.mkdtemp()) / "a.txt", lambda f: f.write(b"hi"))
>>> read_regular(path, "example")
b'hi'
"""

from __future__ import annotations

import errno
import os
import secrets
import stat
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

__all__ = ["atomic_write", "check_writable", "check_directory", "read_regular",
           "image_format"]

_Path = str | os.PathLike


def check_writable(path: _Path) -> Path:
    """Check, before any work is done, that ``atomic_write`` could write
    ``path``: its directory exists and takes new files, and ``path`` is a new
    name or a regular file (a symlink counts as its target). Raises
    ``ValueError`` for a FIFO, device or socket, ``OSError`` otherwise;
    returns the file that a write replaces.

    >>> import tempfile, pathlib
    >>> fm.io.check_writable(pathlib.Path(tempfile.mkdtemp()) / "new.json").name
    'new.json'
    >>> fm.io.check_writable("/dev/null")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ValueError: /dev/null is a character device, not a regular file; ...
    """
    target = _target(path)[0]
    fd, tmp = _temp_beside(target, path)
    os.close(fd)
    os.unlink(tmp)
    return target


def check_directory(path: _Path) -> Path:
    """Check that ``path`` is a directory where new files can be written, or
    that it can be made (its nearest existing ancestor takes new entries);
    raises ``OSError`` otherwise. Returns ``path``.

    >>> import tempfile, pathlib
    >>> check_directory(pathlib.Path(tempfile.mkdtemp()) / "runs" / "a").name
    'a'
    >>> check_directory("/dev/null")
    Traceback (most recent call last):
    NotADirectoryError: [Errno 20] not a directory: '/dev/null'
    """
    path = Path(os.fsdecode(path))
    existing = next(a for a in (path, *path.absolute().parents) if a.exists())
    if not existing.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, "not a directory", str(existing))
    fd, tmp = _new_temp(existing)
    os.close(fd)
    os.unlink(tmp)
    return path


def atomic_write(path: _Path, write: Callable[[IO[bytes]], Any]) -> Path:
    """Call ``write(f)`` on a new temporary file next to ``path``, then move it
    onto ``path`` in one step (``os.replace``). If ``write`` raises, the
    temporary file is removed and an existing ``path`` is left untouched. An
    existing file keeps its permission bits (and, where allowed, its owner); a
    symlink is written through to its target; a FIFO, device or socket is
    never replaced (``ValueError``).

    >>> import tempfile, pathlib
    >>> p = fm.io.atomic_write(pathlib.Path(tempfile.mkdtemp()) / "a.txt", lambda f: f.write(b"hi"))
    >>> p.read_bytes()
    b'hi'
    """
    target, old = _target(path)
    fd, tmp = _temp_beside(target, path)
    try:
        with os.fdopen(fd, "wb") as f:
            if old is not None:
                _keep_owner_and_mode(f.fileno(), old)
            write(f)
            f.flush()
            os.fsync(f.fileno())
        _target(path)  # once more: the name must not have become a device meanwhile
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _sync_directory(target.parent)
    return Path(os.fsdecode(path))


def _target(path: _Path) -> tuple[Path, os.stat_result | None]:
    """The file a write to ``path`` replaces (through symlinks) and its status,
    ``None`` if it does not exist yet."""
    name = os.fsdecode(path)
    if not name:  # Path("") would be ".", the current directory
        raise ValueError("the path is empty; pass a file name, such as 'model.json'")
    if name.endswith(tuple(sep for sep in (os.sep, os.altsep) if sep)):
        # (``Path`` drops the separator: "model.json/" wrote, or replaced, model.json)
        raise IsADirectoryError(errno.EISDIR, f"{name} ends with a path separator, the "
                                "name of a directory; pass the path of a file (without the "
                                "trailing separator)")
    path = Path(name)
    target = Path(os.path.realpath(path)) if path.is_symlink() else path
    try:
        status = os.stat(target)
    except FileNotFoundError:
        return target, None
    except NotADirectoryError as e:
        raise _unwritable(e, path, target.parent) from None
    if stat.S_ISDIR(status.st_mode):
        raise IsADirectoryError(errno.EISDIR, f"{path} is a directory; pass the path of a file "
                                "(a new name, or a file to replace)")
    if not stat.S_ISREG(status.st_mode):
        raise ValueError(f"{path} is {_kind(status.st_mode)}, not a regular file; fmicrograd "
                         f"writes only regular files: choose another path")
    return target, status


def _kind(mode: int) -> str:
    kinds = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
             (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"),
             (stat.S_ISDIR, "a directory"))
    return next((name for test, name in kinds if test(mode)), "a special file")


def _temp_beside(target: Path, path: _Path) -> tuple[int, Path]:
    """A new temporary file in ``target``'s directory, or the ``OSError`` of
    ``_unwritable``."""
    try:
        return _new_temp(target.parent)
    except OSError as e:
        raise _unwritable(e, path, target.parent) from None


def _unwritable(e: OSError, path: _Path, directory: Path) -> OSError:
    """``e`` (raised on a file in ``directory``) as an ``OSError`` of the same
    kind that names ``path``, the user's (not a temporary file's), and says
    what is wrong with its directory."""
    if e.errno == errno.ENOENT and not os.path.isdir(directory):
        why = "does not exist; create it first, or choose another directory"
    elif e.errno == errno.ENOTDIR:
        why = "is not a directory (a part of that path is a file, not a directory)"
    else:
        why = f"takes no new file ({e.strerror or e})"
    return OSError(e.errno, f"cannot write {os.fsdecode(path)}: its directory {directory} {why}")


def _new_temp(directory: Path) -> tuple[int, Path]:
    # A short name of its own, so that any name the OS accepts for the file
    # itself (up to NAME_MAX) still works.
    while True:
        tmp = directory / f".fmicrograd-{secrets.token_hex(8)}.tmp"
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), tmp
        except FileExistsError:
            continue


def _sync_directory(directory: Path) -> None:
    # the rename itself survives a crash only once the directory is on disk
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems cannot sync a directory; the file itself is synced
    finally:
        os.close(fd)


def _keep_owner_and_mode(fd: int, old: os.stat_result) -> None:
    try:
        os.fchown(fd, old.st_uid, old.st_gid)
    except OSError:
        pass  # only root may give a file away; the mode is kept regardless
    os.fchmod(fd, stat.S_IMODE(old.st_mode))


def read_regular(path: _Path, who: str) -> bytes:
    """The bytes of the regular file ``path``; a FIFO or device (or an empty
    path) is a ``ValueError`` and a directory an ``IsADirectoryError``, each
    starting with ``who`` (opened without blocking, so a FIFO never hangs).

    >>> read_regular("/dev/null", "fm.io.load")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ValueError: fm.io.load: /dev/null is a character device, not a regular file; ...
    """
    name = os.fsdecode(path)
    if not name:
        raise ValueError(f"{who}: the path is empty; pass a file written by fm.io.save")
    directory = IsADirectoryError(errno.EISDIR, f"{who}: {name} is a directory; pass a file "
                                  "written by fm.io.save")
    try:
        fd = os.open(name, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except IsADirectoryError:  # where a directory cannot even be opened
        raise directory from None
    try:
        mode = os.fstat(fd).st_mode  # before os.fdopen, which fails on a directory
        if stat.S_ISDIR(mode):
            raise directory
        if not stat.S_ISREG(mode):
            raise ValueError(f"{who}: {name} is {_kind(mode)}, not a regular file; it is not "
                             f"an fmicrograd parameter file")
        f = os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    with f:
        return f.read()


def image_format(path: str | os.PathLike) -> str:
    """The image format ``fm.plot`` writes ``path`` in: its suffix's (PNG without
    one); a ``ValueError`` for a suffix matplotlib cannot write.

    >>> fm.plot.image_format("moons.svg"), fm.plot.image_format("curve")
    ('svg', 'png')
    """
    suffix = os.path.splitext(os.fspath(path))[1].lower().lstrip(".")
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
    except ImportError as e:
        raise ImportError("fm.plot needs matplotlib: pip install 'fmicrograd[plot]'") from e
    kinds = FigureCanvasAgg.get_supported_filetypes()
    if suffix and suffix not in kinds:
        raise ValueError(f"fm.plot: cannot write {os.fspath(path)!r}: matplotlib has no "
                         f"'.{suffix}' format; use one of "
                         f"{', '.join('.' + k for k in sorted(kinds))}")
    return suffix or "png"
