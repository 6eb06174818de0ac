"""A FUSE filesystem that loses power, for Cairn's tests.

usage: /usr/bin/python3 powercut_fs.py <backing dir> <mount point>

It mounts the mount point over the backing directory, which holds what is "on the platter".
Writes and truncations of a file's contents are not applied to the backing file: they are
kept in memory per file, in order, and reads and sizes see them over the backing content, as
a page cache would. `fsync`/`fdatasync` of a file applies that file's changes to the backing
file, in order, and only then returns.

Simplification: directory operations (create, mkdir, unlink, rename, rmdir, link, chmod,
utimens) are applied to the backing directory at once, as a journaling filesystem's ordered
metadata would make them durable; a new file exists at once, empty, and its contents are
pending until synced. Pending changes belong to the file (its inode), not to its name: they
follow it through a rename, and go away with its last name (or its last open descriptor).

Commands, one per line on stdin, each answered by one line on stdout starting with its id:
  <id> cut <drop|subset|torn> <seed>   the power fails (see `Powercut.cut`); answers the counts
  <id> stats                           the pending changes, without cutting anything
  <id> exit                            unmount and exit
The daemon prints `ready` once the mount serves requests. When stdin closes (the test process
is gone) or its parent changes, it unmounts (lazily) and exits.

From the cut on, every operation fails with EIO. One lock covers every operation and the cut,
so a sync either ends wholly before the cut (durable) or fails after it.

What survives a cut, by mode (writes and truncations are "changes", numbered in the order the
filesystem received them, across all files; a change is one FUSE request, and the kernel may
split a write(2) into several, e.g. at the end of a page it does not hold whole):
  drop    nothing that was not synced;
  subset  each change independently, with a probability drawn from the seed (10% to 90%),
          applied in order: a kept write that lands past a lost one leaves zeros there, as
          a file with a hole (what a real disk shows for blocks never written);
  torn    the changes in order up to one drawn from the seed; that one is applied in part
          and nothing after it. A write is torn at a 512-byte sector boundary of the file
          (sectors are written whole or not at all): what survives of it is the part up to
          a boundary strictly inside it, drawn from the seed, and nothing when it lies within
          one sector. A truncation drawn to tear is lost.
"""

import errno
import json
import os
import random
import signal
import stat
import subprocess
import sys
import threading
import time

from fusepy import FUSE, FuseOSError, Operations

PAGE = 4096
SECTOR = 512
MODES = ('drop', 'subset', 'torn')


class Pending:
    """The changes to one file's contents that are not on the platter yet, and the view they give."""

    def __init__(self, fd, name):
        # Our own descriptor on the backing file: it follows renames, and holds the inode.
        self.fd = fd
        # The file's name when its first pending change came (for reports).
        self.name = name
        size = os.fstat(fd).st_size
        self.size = size
        # Backing bytes at or past this offset are gone from the view (truncated away).
        self.floor = size
        # Page index -> bytearray(PAGE): the page as readers see it (bytes past `size` are zero).
        self.pages = {}
        # (seq, 'write', offset, data) or (seq, 'truncate', length, None), in order.
        self.changes = []

    def _backing(self, start, end):
        """Bytes [start, end) of the backing file as the view has them (zeros past the floor)."""
        want = end - start
        got = os.pread(self.fd, max(0, min(end, self.floor) - start), start) if start < self.floor else b''
        return got + bytes(want - len(got))

    def _page(self, index):
        page = self.pages.get(index)
        if page is None:
            page = bytearray(self._backing(index * PAGE, (index + 1) * PAGE))
            self.pages[index] = page
        return page

    def write(self, seq, offset, data):
        self.changes.append((seq, 'write', offset, data))
        at = offset
        while at < offset + len(data):
            index, inner = divmod(at, PAGE)
            n = min(PAGE - inner, offset + len(data) - at)
            self._page(index)[inner:inner + n] = data[at - offset:at - offset + n]
            at += n
        self.size = max(self.size, offset + len(data))

    def truncate(self, seq, length):
        self.changes.append((seq, 'truncate', length, None))
        if length < self.size:
            for index in [i for i in self.pages if i * PAGE >= length]:
                del self.pages[index]
            index, inner = divmod(length, PAGE)
            if index in self.pages:
                self.pages[index][inner:] = bytes(PAGE - inner)
            self.floor = min(self.floor, length)
        self.size = length

    def read(self, offset, length):
        end = min(offset + length, self.size)
        parts = []
        at = offset
        while at < end:
            index = at // PAGE
            page = self.pages.get(index)
            if page is not None:
                inner = at - index * PAGE
                n = min(PAGE - inner, end - at)
                parts.append(bytes(page[inner:inner + n]))
                at += n
                continue
            # A run of pages nobody changed: one read of the backing file.
            stop = index + 1
            while stop * PAGE < end and stop not in self.pages:
                stop += 1
            n = min(stop * PAGE, end) - at
            parts.append(self._backing(at, at + n))
            at += n
        return b''.join(parts)


def apply_change(fd, kind, a, data):
    """Applies one change to a backing file."""
    if kind == 'truncate':
        os.ftruncate(fd, a)
        return
    done = 0
    while done < len(data):
        done += os.pwrite(fd, data[done:], a + done)


def torn_length(offset, length, rng):
    """How much of a write a torn cut keeps: up to a sector boundary inside it, or nothing."""
    first = (offset // SECTOR + 1) * SECTOR
    boundaries = list(range(first, offset + length, SECTOR))
    return rng.choice(boundaries) - offset if boundaries else 0


class Powercut(Operations):
    use_ns = True

    def __init__(self, root):
        self.root = root
        # Not `lock`: fusepy would take an attribute of that name for the FUSE lock operation
        # (without one, the kernel keeps POSIX locks itself, as LevelDB's LOCK file needs).
        self.mutex = threading.Lock()
        self.off = False
        self.seq = 0
        self.pending = {}  # inode -> Pending
        self.handles = {}  # fh (a backing descriptor) -> inode
        self.synced = 0  # changes applied by syncs

    # -- helpers ---------------------------------------------------------------------------

    def _path(self, path):
        return os.path.join(self.root, path.lstrip('/'))

    def _powered(self):
        if self.off:
            raise FuseOSError(errno.EIO)

    def _pending_for(self, inode, fd, path):
        pend = self.pending.get(inode)
        if pend is None:
            pend = self.pending[inode] = Pending(os.dup(fd), path)
        return pend

    def _forget_if_gone(self, inode):
        """Drops the pending changes of a file that has no name left (they can never be read)."""
        pend = self.pending.get(inode)
        if pend is not None and os.fstat(pend.fd).st_nlink == 0 and inode not in self.handles.values():
            os.close(pend.fd)
            del self.pending[inode]

    def _next_seq(self):
        self.seq += 1
        return self.seq

    # -- power -----------------------------------------------------------------------------

    def stats(self):
        with self.mutex:
            changes = sum(len(p.changes) for p in self.pending.values())
            return {'files': len(self.pending), 'pending': changes, 'synced': self.synced, 'off': self.off}

    def cut(self, mode, seed):
        """The power fails: what survives is written to the backing files; nothing more is served."""
        if mode not in MODES:
            return {'error': 'mode must be one of ' + ', '.join(MODES)}
        with self.mutex:
            if self.off:
                return {'error': 'the power is off already'}
            self.off = True
            rng = random.Random(seed)
            changes = sorted(
                ((seq, pend, kind, a, data) for pend in self.pending.values() for (seq, kind, a, data) in pend.changes),
                key=lambda c: c[0],
            )
            report = {'mode': mode, 'seed': seed, 'files': len(self.pending), 'pending': len(changes),
                      'kept': 0, 'torn': 0, 'tornBytes': 0, 'tornOf': 0,
                      'byFile': {p.name: len(p.changes) for p in self.pending.values()}}
            if mode == 'subset':
                share = 0.1 + 0.8 * rng.random()
                keep = [c for c in changes if rng.random() < share]
            elif mode == 'torn' and changes:
                upto = rng.randrange(len(changes))
                keep = changes[:upto]
            else:
                keep = []
            for (_, pend, kind, a, data) in keep:
                apply_change(pend.fd, kind, a, data)
            report['kept'] = len(keep)
            if mode == 'torn' and changes:
                (_, pend, kind, a, data) = changes[upto]
                if kind == 'write':
                    n = torn_length(a, len(data), rng)
                    if n > 0:
                        apply_change(pend.fd, kind, a, data[:n])
                    report.update(torn=1, tornBytes=n, tornOf=len(data))
            for pend in self.pending.values():
                os.close(pend.fd)
            self.pending = {}
            return report

    # -- files -----------------------------------------------------------------------------

    def getattr(self, path, fh=None):
        with self.mutex:
            self._powered()
            st = os.fstat(fh) if fh is not None else os.lstat(self._path(path))
            attrs = {key: getattr(st, key) for key in
                     ('st_mode', 'st_nlink', 'st_uid', 'st_gid', 'st_size', 'st_ino', 'st_blocks')}
            attrs.update(st_atime=st.st_atime_ns, st_mtime=st.st_mtime_ns, st_ctime=st.st_ctime_ns)
            pend = self.pending.get(st.st_ino) if stat.S_ISREG(st.st_mode) else None
            if pend is not None:
                attrs['st_size'] = pend.size
                attrs['st_blocks'] = (pend.size + 511) // 512
            return attrs

    def open(self, path, flags):
        with self.mutex:
            self._powered()
            fd = os.open(self._path(path), os.O_RDWR)
            self.handles[fd] = os.fstat(fd).st_ino
            return fd

    def create(self, path, mode, fi=None):
        with self.mutex:
            self._powered()
            fd = os.open(self._path(path), os.O_RDWR | os.O_CREAT, mode)
            self.handles[fd] = os.fstat(fd).st_ino
            return fd

    def read(self, path, size, offset, fh):
        with self.mutex:
            self._powered()
            pend = self.pending.get(self.handles[fh])
            return pend.read(offset, size) if pend is not None else os.pread(fh, size, offset)

    def write(self, path, data, offset, fh):
        with self.mutex:
            self._powered()
            self._pending_for(self.handles[fh], fh, path).write(self._next_seq(), offset, bytes(data))
            return len(data)

    def truncate(self, path, length, fh=None):
        with self.mutex:
            self._powered()
            fd = fh if fh is not None else os.open(self._path(path), os.O_RDWR)
            try:
                self._pending_for(os.fstat(fd).st_ino, fd, path).truncate(self._next_seq(), length)
            finally:
                if fh is None:
                    os.close(fd)

    def fsync(self, path, datasync, fh):
        with self.mutex:
            self._powered()
            pend = self.pending.pop(self.handles[fh], None)
            if pend is not None:
                for (_, kind, a, data) in pend.changes:
                    apply_change(pend.fd, kind, a, data)
                self.synced += len(pend.changes)
                os.close(pend.fd)

    def flush(self, path, fh):
        # close() writes nothing durable.
        with self.mutex:
            self._powered()

    def release(self, path, fh):
        # Always lets go of the descriptor, power or not: a dead process's files close.
        with self.mutex:
            inode = self.handles.pop(fh, None)
            os.close(fh)
            if inode is not None and not self.off:
                self._forget_if_gone(inode)

    # -- directories and metadata (applied at once) ----------------------------------------

    def readdir(self, path, fh):
        with self.mutex:
            self._powered()
            return ['.', '..'] + os.listdir(self._path(path))

    def mkdir(self, path, mode):
        with self.mutex:
            self._powered()
            os.mkdir(self._path(path), mode)

    def rmdir(self, path):
        with self.mutex:
            self._powered()
            os.rmdir(self._path(path))

    def unlink(self, path):
        with self.mutex:
            self._powered()
            full = self._path(path)
            inode = os.lstat(full).st_ino
            os.unlink(full)
            self._forget_if_gone(inode)

    def rename(self, old, new):
        with self.mutex:
            self._powered()
            target = self._path(new)
            try:
                replaced = os.lstat(target).st_ino
            except FileNotFoundError:
                replaced = None
            os.rename(self._path(old), target)
            if replaced is not None:
                self._forget_if_gone(replaced)

    def link(self, target, source):
        with self.mutex:
            self._powered()
            os.link(self._path(source), self._path(target))

    def symlink(self, target, source):
        with self.mutex:
            self._powered()
            os.symlink(source, self._path(target))

    def readlink(self, path):
        with self.mutex:
            self._powered()
            return os.readlink(self._path(path))

    def chmod(self, path, mode):
        with self.mutex:
            self._powered()
            os.chmod(self._path(path), mode)

    def chown(self, path, uid, gid):
        with self.mutex:
            self._powered()
            os.chown(self._path(path), uid, gid)

    def utimens(self, path, times=None):
        with self.mutex:
            self._powered()
            os.utime(self._path(path), ns=times)

    def access(self, path, amode):
        with self.mutex:
            self._powered()
            if not os.access(self._path(path), amode):
                raise FuseOSError(errno.EACCES)

    def statfs(self, path):
        with self.mutex:
            self._powered()
            st = os.statvfs(self._path(path))
            return {key: getattr(st, key) for key in
                    ('f_bavail', 'f_bfree', 'f_blocks', 'f_bsize', 'f_favail', 'f_ffree',
                     'f_files', 'f_flag', 'f_frsize', 'f_namemax')}

    def fsyncdir(self, path, datasync, fh):
        # Directory operations are durable at once.
        with self.mutex:
            self._powered()

    def init(self, path):
        print('ready', flush=True)


def unmount(mount):
    """Lazily, so that a mount still in use goes once its last user does."""
    for command in (['fusermount3', '-u', '-z', mount], ['umount', '-l', mount]):
        try:
            if subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0:
                return
        except OSError:
            pass


def serve_commands(fs, mount):
    # Signals go to the main thread, where the filesystem's loop catches them.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT, signal.SIGHUP})
    for line in sys.stdin:
        parts = line.split()
        if len(parts) < 2:
            continue
        ident, word, args = parts[0], parts[1], parts[2:]
        if word == 'cut' and len(args) == 2:
            answer = fs.cut(args[0], int(args[1]))
        elif word == 'stats':
            answer = fs.stats()
        elif word == 'exit':
            print(ident + ' {}', flush=True)
            break
        else:
            answer = {'error': 'unknown command ' + word}
        print(ident + ' ' + json.dumps(answer), flush=True)
    leave(mount)


def watch_parent(mount, parent):
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT, signal.SIGHUP})
    while os.getppid() == parent:
        time.sleep(1)
    leave(mount)


def leave(mount):
    # The filesystem's loop ends once the kernel lets go of the mount; if something still holds
    # it after a while, the process goes anyway (the kernel then fails the mount's requests).
    unmount(mount)
    time.sleep(10)
    os._exit(3)


def main():
    if len(sys.argv) != 3:
        sys.stderr.write('usage: powercut_fs.py <backing dir> <mount point>\n')
        sys.exit(2)
    root, mount = os.path.realpath(sys.argv[1]), os.path.realpath(sys.argv[2])
    fs = Powercut(root)
    threading.Thread(target=serve_commands, args=(fs, mount), daemon=True).start()
    threading.Thread(target=watch_parent, args=(mount, os.getppid()), daemon=True).start()
    # Single-threaded: one request at a time. No direct_io, so mmap reads work (LevelDB reads
    # its tables through mmap); no attribute or entry caching, so sizes always come from here;
    # big_writes, so that a write is one change up to 128 KiB, not one per 4 KiB page.
    FUSE(fs, mount, foreground=True, nothreads=True, fsname='powercut', subtype='powercut',
         attr_timeout=0, entry_timeout=0, negative_timeout=0, big_writes=True, max_write=131072)


if __name__ == '__main__':
    main()
