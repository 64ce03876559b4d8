"""torchrun whose TCP stores listen on one address only: ``python -c SOURCE ADDR TORCHRUN-ARGS...``.

torch's TCPStore server listens on every interface whatever host name it is given, and
nothing in it checks who connects. It also takes a socket that is already bound
(``master_listen_fd``): this wrapper binds that socket to ADDR for every store server
torchrun's agent starts (the c10d rendezvous store and the store its workers share), and
passes ``--local-addr=ADDR`` so that workers reach the shared store there.

ADDR ``slurm`` means this node's ``NodeAddr`` as ``scontrol`` reports it. Standard library
and torch only, Python 3.6 syntax, no annotations: the same text runs on remote hosts.
"""
import errno
import os
import socket
import subprocess
import sys


def slurm_node_addr():
    """This Slurm node's NodeAddr (its host name if scontrol does not say)."""
    name = os.environ.get("SLURMD_NODENAME") or socket.gethostname()
    try:
        out = subprocess.run(["scontrol", "show", "node", "-o", name], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, universal_newlines=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        out = ""
    for item in out.split():
        if item.startswith("NodeAddr=") and len(item) > len("NodeAddr="):
            return item[len("NodeAddr="):]
    return name


def listen_on(addr, port):
    """A listening TCP socket bound to (addr, port); port 0 takes a free one."""
    last = None
    for family, kind, proto, _, sockaddr in socket.getaddrinfo(addr, port, 0, socket.SOCK_STREAM):
        sock = socket.socket(family, kind, proto)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(sockaddr)
            sock.listen(2048)
            return sock
        except OSError as exc:
            sock.close()
            last = exc
    raise last if last is not None else OSError(errno.EADDRNOTAVAIL, "no address for %r" % addr)


def bind_stores(addr):
    """Make every TCPStore server this process starts listen on `addr` alone."""
    import torch.distributed as dist

    base = dist.TCPStore
    if "master_listen_fd" not in (base.__init__.__doc__ or ""):  # torch before 2.2
        sys.stderr.write("physviz: torch %s cannot bind its TCP stores to one address; they listen on every "
                         "interface of this host\n" % getattr(sys.modules.get("torch"), "__version__", "?"))
        return base

    class BoundTCPStore(base):
        """A TCPStore whose server listens on one address."""

        def __init__(self, host_name, port, world_size=None, is_master=False, *args, **kwargs):
            if is_master and kwargs.get("master_listen_fd") is None:
                try:
                    sock = listen_on(addr, int(port))
                except OSError as exc:
                    if exc.errno == errno.EADDRINUSE:  # another agent here hosts it: the caller joins as a client
                        raise RuntimeError("port %s on %s is in use" % (port, addr))
                    sys.stderr.write("physviz: cannot listen on %s:%s (%s); give the nodes an address of this "
                                     "host (ssh.hosts[].rdzv_addr)\n" % (addr, port, exc))
                    raise RuntimeError("cannot listen on %s:%s (%s)" % (addr, port, exc))
                port = sock.getsockname()[1]
                kwargs["master_listen_fd"] = sock.detach()
            super().__init__(host_name, port, world_size, is_master, *args, **kwargs)

    import torch.distributed.run  # noqa: F401  (loads the modules that hold the name)

    dist.TCPStore = BoundTCPStore
    for module in list(sys.modules.values()):
        if getattr(module, "TCPStore", None) is base:
            try:
                setattr(module, "TCPStore", BoundTCPStore)
            except (AttributeError, TypeError):
                pass
    return BoundTCPStore


def main(argv):
    """ADDR TORCHRUN-ARGS... -> torchrun, its stores on ADDR."""
    addr, args = argv[0], list(argv[1:])
    if addr == "slurm":
        addr = slurm_node_addr()
    bind_stores(addr)
    from torch.distributed.run import main as torchrun

    torchrun(["--local-addr=%s" % addr] + args)


if __name__ == "__main__":
    main(sys.argv[1:])
