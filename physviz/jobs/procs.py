"""Process helpers that run here or, sent as source, on a remote host: find, check and end a job's processes.

Every process a job starts carries ``PHYSVIZ_JOB_ID=<id>`` in its environment (torchrun
agents, their workers, whatever those start), so a scan of /proc finds them all even
after they moved to a new session. Standard library only, Python 3.6 syntax, no
annotations: the same text runs as ``python -c SOURCE CMD JSON`` on a remote host.
"""
import json
import os
import signal
import socket
import sys
import time

MARKER = "PHYSVIZ_JOB_ID"


def _stat(pid):
    """(state, ppid, pgrp) of a process, or None when it is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            text = f.read()
    except (OSError, IOError):
        return None
    rest = text.rsplit(")", 1)[1].split()
    return rest[0], int(rest[1]), int(rest[2])


def _ancestors():
    """This process and its parents: never signalled, even if they carry the marker."""
    out, pid = set(), os.getpid()
    while pid > 1 and pid not in out:
        out.add(pid)
        st = _stat(pid)
        if st is None:
            break
        pid = st[1]
    return out


def find(job_id):
    """Pids of live (non-zombie) processes whose environment holds PHYSVIZ_JOB_ID=job_id."""
    needle = ("%s=%s" % (MARKER, job_id)).encode()
    skip = _ancestors()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) in skip:
            continue
        try:
            with open("/proc/%s/environ" % entry, "rb") as f:
                env = f.read()
        except (OSError, IOError):
            continue
        if needle in env.split(b"\0"):
            st = _stat(int(entry))
            if st is not None and st[0] not in ("Z", "X"):
                found.append(int(entry))
    return sorted(found)


def _signal_all(job_id, sig):
    """Send `sig` to every process group and process of the job; return the pids signalled."""
    pids = find(job_id)
    groups = set()
    for pid in pids:
        st = _stat(pid)
        if st is not None:
            groups.add(st[2])
    skip_groups = set()
    for pid in _ancestors():
        st = _stat(pid)
        if st is not None:
            skip_groups.add(st[2])
    for group in groups - skip_groups:
        try:
            os.killpg(group, sig)
        except (OSError, ProcessLookupError):
            pass
    for pid in pids:
        try:
            os.kill(pid, sig)
        except (OSError, ProcessLookupError):
            pass
    return pids


def kill_job(job_id, grace=10.0):
    """SIGTERM the job's process groups and processes, SIGKILL what is left after `grace` s; report leftovers."""
    signalled = _signal_all(job_id, signal.SIGTERM)
    deadline = time.time() + float(grace)
    while find(job_id) and time.time() < deadline:
        time.sleep(0.1)
    killed = []
    for _ in range(20):
        left = _signal_all(job_id, signal.SIGKILL)
        if not left:
            break
        killed.extend(left)
        time.sleep(0.1)
    return {"signalled": signalled, "killed": sorted(set(killed)), "left": find(job_id)}


def node_status(job_id, state_prefixes):
    """How many of the job's processes live here, and the exit code file of each node ('<prefix>.exit').

    The processes are counted first: a node writes its exit file before it exits, so when
    none is left the files read next are complete. (Read the other way round, a node that
    exits between the two reads looks dead without an exit code, i.e. failed.)
    """
    alive = len(find(job_id))
    exits = {}
    for prefix in state_prefixes:
        try:
            with open(prefix + ".exit") as f:
                exits[prefix] = int(f.read().strip() or "1")
        except (OSError, IOError, ValueError):
            exits[prefix] = None
    return {"alive": alive, "exits": exits}


def free_port():
    """A TCP port that is free on this host now (for the c10d rendezvous)."""
    s = socket.socket()
    try:
        s.bind(("", 0))
        return s.getsockname()[1]
    finally:
        s.close()


def main(argv):
    """CMD JSON-ARGS -> one line of JSON on stdout."""
    cmd, args = argv[0], json.loads(argv[1]) if len(argv) > 1 else {}
    if cmd == "find":
        out = find(args["job_id"])
    elif cmd == "kill":
        out = kill_job(args["job_id"], args.get("grace", 10.0))
    elif cmd == "status":
        out = node_status(args["job_id"], args["prefixes"])
    elif cmd == "port":
        out = free_port()
    else:
        raise SystemExit("unknown command %r" % cmd)
    sys.stdout.write(json.dumps(out) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
