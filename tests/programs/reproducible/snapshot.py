"""Everything a Python program commonly reads that changes from run to run, printed as
key=value lines: clocks, the random module, os.urandom, uuid4, process ids, a temporary
directory's name, a directory listing, the host name, str and bytes hashes (no
PYTHONHASHSEED), the processor count and the kernel's identity.

argv[1] is a comma-separated list of file names, created in that order in a fresh temporary
directory whose listing is printed: the test passes a different order in each run, and the
listing must not show it. Everything the script creates it removes, so that a run leaves
nothing behind even when /tmp is the host's.
"""

import datetime
import os
import random
import shutil
import socket
import sys
import tempfile
import time
import uuid

names = sys.argv[1].split(",")

print("pythonhashseed=%s" % os.environ.get("PYTHONHASHSEED", "unset"))
print("time=%r" % time.time())
print("time_ns=%d" % time.time_ns())
print("datetime=%s" % datetime.datetime.now().isoformat())
print("utc=%s" % datetime.datetime.now(datetime.timezone.utc).isoformat())
print("monotonic=%r" % time.monotonic())
print("perf_counter=%r" % time.perf_counter())
print("random=%r" % random.random())
print("randint=%d" % random.randint(0, 10**9))
print("urandom=%s" % os.urandom(16).hex())
print("uuid4=%s" % uuid.uuid4())
print("pid=%d" % os.getpid())
print("ppid=%d" % os.getppid())

top = tempfile.mkdtemp()
print("mkdtemp=%s" % top)
listed = os.path.join(top, "listed")
os.mkdir(listed)
for name in names:
    with open(os.path.join(listed, name), "w") as f:
        f.write(name)
print("listdir=%s" % ",".join(os.listdir(listed)))
print("scandir=%s" % ",".join(entry.name for entry in os.scandir(listed)))
shutil.rmtree(top)

print("hostname=%s" % socket.gethostname())
print("hash_str=%d" % hash("abc"))
print("hash_bytes=%d" % hash(b"abc"))
print("set_order=%s" % "".join({"a", "b", "c", "d", "e", "f", "g", "h"}))
print("cpu_count=%s" % os.cpu_count())
print("affinity=%s" % sorted(os.sched_getaffinity(0)))
print("uname=%s" % " ".join(os.uname()))
print("time_end=%r" % time.time())
