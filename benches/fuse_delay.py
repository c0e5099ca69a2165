#!/usr/bin/env python3
"""A FUSE passthrough with a delay on every open and every read: network-like storage for
sumpool's tests and benchmarks.

    fuse_delay.py SOURCE MOUNTPOINT [--open-ms MS] [--read-ms MS] [--hang GLOB]...
                  [--hang-statfs-after N] [--release FILE] [--threads N] [--ready FILE]

Serves SOURCE at MOUNTPOINT (in the foreground; unmount with `umount MOUNTPOINT` or stop the
process with SIGTERM). Every open waits --open-ms and every read --read-ms milliseconds before
it is served, as a request to a distant server would; listings and stats are not delayed.
A read of a file whose path (relative to SOURCE) matches a --hang glob does not return, as on
a dead NFS server or a stuck FUSE daemon, until the file named by --release exists: then it
fails with EIO (without --release, it never returns). With --hang-statfs-after N, every statfs
after the first N hangs the same way (a file server that answers reads but not statfs).
--ready FILE is created once the file system is mounted. (A signal cannot release a hung read: libfuse's loop holds the main thread,
where Python runs signal handlers, and it waits for the hung request before it exits.)

libfuse's multithreaded loop serves requests on at most --threads threads at once (libfuse's
own default is 10, which would make the harness the bottleneck of any reader that keeps more
requests in flight); the default here is 256. The kernel's page cache is dropped at every
open (no keep_cache), so every run pays the delays; --kernel-cache keeps it (libfuse's
kernel_cache), for tests of what a run leaves in the page cache.

Needs root (or fusermount3), /dev/fuse, libfuse3, and `pip install mfusepy`.
"""

import argparse
import errno
import fnmatch
import os
import sys
import threading
import time

import mfusepy as fuse


class Delayed(fuse.Operations):
    use_ns = True

    def __init__(self, source, open_s, read_s, hang, release, statfs_after=None):
        self.source = os.path.realpath(source)
        self.open_s = open_s
        self.read_s = read_s
        self.hang = hang
        self.release_file = release
        self.statfs_after = statfs_after
        self.statfs_calls = 0
        self.mutex = threading.Lock()  # not `lock`: that name is the FUSE lock operation

    def _hang_until_released(self):
        while not (self.release_file and os.path.exists(self.release_file)):
            time.sleep(0.05)
        raise fuse.FuseOSError(errno.EIO)

    def _real(self, path):
        return os.path.join(self.source, path.lstrip("/"))

    def getattr(self, path, fh=None):
        try:
            st = os.lstat(self._real(path))
        except OSError as e:
            raise fuse.FuseOSError(e.errno)
        keys = ("st_mode", "st_nlink", "st_uid", "st_gid", "st_size", "st_ino",
                "st_atime_ns", "st_mtime_ns", "st_ctime_ns")
        attrs = {k: getattr(st, k) for k in keys}
        for k in ("st_atime", "st_mtime", "st_ctime"):
            attrs[k] = attrs.pop(k + "_ns")
        return attrs

    def readdir(self, path, fh):
        return [".", ".."] + os.listdir(self._real(path))

    def readlink(self, path):
        return os.readlink(self._real(path))

    def open(self, path, flags):
        time.sleep(self.open_s)
        try:
            return os.open(self._real(path), flags)
        except OSError as e:
            raise fuse.FuseOSError(e.errno)

    def read(self, path, size, offset, fh):
        if any(fnmatch.fnmatch(path.lstrip("/"), pattern) for pattern in self.hang):
            # Until the release file exists: then the read fails, so the daemon can exit.
            self._hang_until_released()
        time.sleep(self.read_s)
        return os.pread(fh, size, offset)

    def release(self, path, fh):
        os.close(fh)
        return 0

    def statfs(self, path):
        with self.mutex:
            self.statfs_calls += 1
            calls = self.statfs_calls
        if self.statfs_after is not None and calls > self.statfs_after:
            self._hang_until_released()
        st = os.statvfs(self.source)
        return {k: getattr(st, k) for k in (
            "f_bavail", "f_bfree", "f_blocks", "f_bsize", "f_favail", "f_ffree",
            "f_files", "f_flag", "f_frsize", "f_namemax")}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("source")
    parser.add_argument("mountpoint")
    parser.add_argument("--open-ms", type=float, default=10.0)
    parser.add_argument("--read-ms", type=float, default=10.0)
    parser.add_argument("--hang", action="append", default=[])
    parser.add_argument("--hang-statfs-after", type=int)
    parser.add_argument("--release")
    parser.add_argument("--threads", type=int, default=256)
    parser.add_argument("--ready")
    parser.add_argument("--kernel-cache", action="store_true")
    args = parser.parse_args()

    if args.ready:
        # Created by a thread once the mount point answers as a mount.
        def announce():
            while not os.path.ismount(args.mountpoint):
                time.sleep(0.01)
            open(args.ready, "w").close()
        threading.Thread(target=announce, daemon=True).start()

    ops = Delayed(args.source, args.open_ms / 1000, args.read_ms / 1000, args.hang,
                  args.release, args.hang_statfs_after)
    options = {"kernel_cache": True} if args.kernel_cache else {}
    fuse.FUSE(ops, args.mountpoint, foreground=True, nothreads=False,
              max_threads=args.threads, fsname="sumpool-delay", **options)


if __name__ == "__main__":
    sys.exit(main())
