#!/usr/bin/env python3
"""Runs one command on a virtual machine with several NUMA nodes.

The lent GPU machines and the development machine each have one NUMA node,
so kt's binding of expert slices to their node's memory would otherwise
never meet a real kernel with two nodes. This boots Debian's kernel under
QEMU (software emulation, TCG: no /dev/kvm needed) on a machine of --nodes
nodes, each with its own CPUs and memory (ACPI SRAT, as a two-socket
server describes itself), with an initramfs that holds the command, the
shared libraries it loads (from ldd) and the files named by --add, all at
their paths on this machine. test/vm/init.c runs the command as PID 1's
child and sends its exit status, stdout and stderr back over a serial
port; this script prints them to its own stdout / stderr and exits with
the command's status.

  scripts/numa-vm.py --init build/test/vm/kt-vm-init [--nodes 2] \\
      [--add PATH]... [--env NAME=VALUE]... -- PROGRAM [ARGS...]

Exit 125 (and a message naming the cause) when the machine could not be
built or did not report: no QEMU, no kernel, a missing file, a timeout.
Kernel: --kernel, else $KT_VM_KERNEL, else /usr/local/lib/kt/vmlinuz
(scripts/install-deps.sh extracts it from Debian's linux-image-amd64).
docs/testing.md ("Tests on a NUMA machine").
"""
import argparse
import os
import shutil
import stat
import subprocess
import sys
import tempfile

DEFAULT_KERNEL = "/usr/local/lib/kt/vmlinuz"


def fail(msg):
    sys.stderr.write("numa-vm: %s\n" % msg)
    sys.exit(125)


class Cpio:
    """A cpio archive in the "newc" format the kernel unpacks as initramfs."""

    def __init__(self):
        self.chunks = []
        self.ino = 1
        self.seen = set()

    def _entry(self, name, mode, data=b"", target=None):
        body = target.encode() if target is not None else data
        fields = [self.ino, mode, 0, 0, 1, 0, len(body), 0, 0, 0, 0,
                  len(name) + 1, 0]
        self.ino += 1
        head = b"070701" + b"".join(b"%08X" % f for f in fields)
        rec = head + name.encode() + b"\0"
        rec += b"\0" * (-len(rec) % 4)
        rec += body + b"\0" * (-len(body) % 4)
        self.chunks.append(rec)

    def directory(self, path):
        path = path.strip("/")
        if not path or path in self.seen:
            return
        self.directory(os.path.dirname(path))
        self.seen.add(path)
        self._entry(path, stat.S_IFDIR | 0o755)

    def file(self, path, data, mode=0o644):
        path = path.strip("/")
        self.directory(os.path.dirname(path))
        if path in self.seen:
            return
        self.seen.add(path)
        self._entry(path, stat.S_IFREG | mode, data)

    def symlink(self, path, target):
        path = path.strip("/")
        self.directory(os.path.dirname(path))
        if path in self.seen:
            return
        self.seen.add(path)
        self._entry(path, stat.S_IFLNK | 0o777, target=target)

    def host_path(self, path):
        """Copies a host file, symlink (and its target) or directory tree."""
        if os.path.islink(path):
            target = os.readlink(path)
            self.symlink(path, target)
            self.host_path(os.path.join(os.path.dirname(path), target))
        elif os.path.isdir(path):
            self.directory(path)
            for name in sorted(os.listdir(path)):
                self.host_path(os.path.join(path, name))
        elif os.path.isfile(path):
            with open(path, "rb") as f:
                data = f.read()
            self.file(path, data, os.stat(path).st_mode & 0o777)
        else:
            fail("cannot add %s: no such file or directory" % path)

    def bytes(self):
        self._entry("TRAILER!!!", 0)
        return b"".join(self.chunks)


def shared_libraries(program):
    """The loader and libraries `program` needs, as ldd lists them."""
    out = subprocess.run(["ldd", program], capture_output=True, text=True)
    if out.returncode != 0:
        return []  # static
    libs = []
    for line in out.stdout.splitlines():
        parts = line.split()
        if "=>" in parts:
            i = parts.index("=>")
            if i + 1 < len(parts) and parts[i + 1].startswith("/"):
                libs.append(parts[i + 1])
        elif parts and parts[0].startswith("/"):
            libs.append(parts[0])
    return libs


def qemu_command(args, workdir, initrd):
    nodes, cpus, mem = args.nodes, args.cpus_per_node, args.mem_per_node
    cmd = [args.qemu, "-accel", "tcg", "-cpu", "max", "-nographic",
           "-no-reboot", "-m", "%dM" % (nodes * mem),
           "-smp", "%d,sockets=%d,cores=%d,threads=1" % (nodes * cpus, nodes,
                                                          cpus)]
    for k in range(nodes):
        first = k * cpus
        cpu_range = str(first) if cpus == 1 else "%d-%d" % (first,
                                                            first + cpus - 1)
        cmd += ["-object", "memory-backend-ram,id=m%d,size=%dM" % (k, mem),
                "-numa", "node,nodeid=%d,cpus=%s,memdev=m%d" % (k, cpu_range,
                                                                k)]
    cmd += ["-kernel", args.kernel, "-initrd", initrd,
            "-append", "console=ttyS0 panic=-1 rdinit=/init loglevel=4 " +
            # No page moved behind the tests' back: khugepaged and NUMA
            # balancing would move pages in the background.
            "transparent_hugepage=never numa_balancing=disable",
            "-serial", "file:" + os.path.join(workdir, "console.log"),
            "-serial", "file:" + os.path.join(workdir, "result.bin"),
            "-monitor", "none"]
    return cmd


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--init", required=True,
                   help="the VM's PID 1 (test/vm/init.c, built static)")
    p.add_argument("--nodes", type=int, default=2)
    p.add_argument("--cpus-per-node", type=int, default=1)
    p.add_argument("--mem-per-node", type=int, default=768, help="MiB")
    p.add_argument("--kernel",
                   default=os.environ.get("KT_VM_KERNEL", DEFAULT_KERNEL))
    p.add_argument("--qemu", default=shutil.which("qemu-system-x86_64") or
                   "qemu-system-x86_64")
    p.add_argument("--timeout", type=int, default=900, help="seconds")
    p.add_argument("--add", action="append", default=[],
                   help="a file or directory the command reads")
    p.add_argument("--env", action="append", default=[],
                   help="NAME=VALUE for the command's environment")
    p.add_argument("command", nargs=argparse.REMAINDER)
    args = p.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        fail("no command given (after --)")
    if args.nodes < 1 or args.cpus_per_node < 1 or args.mem_per_node < 64:
        fail("--nodes and --cpus-per-node must be >= 1, --mem-per-node >= 64")
    if not shutil.which(args.qemu):
        fail("%s not found (scripts/install-deps.sh installs "
             "qemu-system-x86)" % args.qemu)
    if not os.path.isfile(args.kernel):
        fail("no kernel at %s (scripts/install-deps.sh extracts Debian's; "
             "or pass --kernel / set KT_VM_KERNEL)" % args.kernel)
    program = shutil.which(command[0]) or command[0]
    if not os.path.isfile(program):
        fail("%s: no such program" % command[0])
    program = os.path.abspath(program)

    archive = Cpio()
    with open(args.init, "rb") as f:
        archive.file("init", f.read(), 0o755)
    for d in ("proc", "sys", "dev", "tmp"):
        archive.directory(d)
    archive.host_path(program)
    for lib in shared_libraries(program):
        archive.host_path(lib)
    for extra in args.add:
        archive.host_path(os.path.abspath(extra))
    argv = [program] + command[1:]
    env = ["PATH=/usr/bin:/bin", "HOME=/tmp"] + args.env
    archive.file("kt-vm/argv", b"".join(a.encode() + b"\0" for a in argv))
    archive.file("kt-vm/env", b"".join(e.encode() + b"\0" for e in env))
    archive.file("kt-vm/cwd", os.getcwd().encode())
    archive.directory(os.getcwd())

    with tempfile.TemporaryDirectory(prefix="kt-numa-vm.") as work:
        initrd = os.path.join(work, "initrd.cpio")
        with open(initrd, "wb") as f:
            f.write(archive.bytes())
        cmd = qemu_command(args, work, initrd)
        try:
            q = subprocess.run(cmd, stdin=subprocess.DEVNULL,
                               capture_output=True, timeout=args.timeout)
        except subprocess.TimeoutExpired:
            fail("the VM did not power off within %d s" % args.timeout)
        result = b""
        path = os.path.join(work, "result.bin")
        if os.path.exists(path):
            with open(path, "rb") as f:
                result = f.read()
        console = b""
        cpath = os.path.join(work, "console.log")
        if os.path.exists(cpath):
            with open(cpath, "rb") as f:
                console = f.read()
        head, sep, body = result.partition(b"\n")
        fields = head.split()
        if not sep or len(fields) != 4 or fields[0] != b"KTVM1":
            tail = console.decode(errors="replace")[-3000:]
            qerr = q.stderr.decode(errors="replace")[-1000:]
            fail("the VM did not report a result (QEMU exit %d)\n"
                 "-- QEMU: %s\n-- kernel console (end):\n%s" %
                 (q.returncode, qerr, tail))
        status, n_out, n_err = (int(x) for x in fields[1:])
        if len(body) < n_out + n_err:
            fail("the VM's report is truncated (%d of %d bytes)" %
                 (len(body), n_out + n_err))
        sys.stdout.buffer.write(body[:n_out])
        sys.stdout.flush()
        sys.stderr.buffer.write(body[n_out:n_out + n_err])
        sys.stderr.flush()
        return status


if __name__ == "__main__":
    sys.exit(main())
