"""Timers from Python: signal.setitimer with time.sleep, signal.alarm with signal.pause, an epoll
wait cut by SIGALRM, and a subprocess spawned while a timer is armed. Prints key=value lines; in reproducible mode every
value is a point of the virtual clock, so two runs print the same bytes."""
import select
import signal
import subprocess
import time

hits = []


def on_alarm(signum, frame):
    hits.append(time.monotonic())


signal.signal(signal.SIGALRM, on_alarm)

# An interval timer of 10 ms, and a loop that sleeps 3 ms at a time until it fired 5 times.
start = time.monotonic()
signal.setitimer(signal.ITIMER_REAL, 0.01, 0.01)
sleeps = 0
while len(hits) < 5:
    time.sleep(0.003)
    sleeps += 1
left = signal.setitimer(signal.ITIMER_REAL, 0)
print("itimer_sleeps=%d" % sleeps)
print("itimer_hits=%s" % ",".join("%.6f" % (h - start) for h in hits))
print("itimer_left=%.6f,%.6f" % left)

# alarm(2) then pause(): the handler runs 2 s later.
hits.clear()
start = time.monotonic()
signal.alarm(2)
signal.pause()
print("pause_after=%.6f hits=%d" % (time.monotonic() - start, len(hits)))

# An epoll wait of 10 s, cut by a 250 ms one-shot timer: Python retries it (PEP 475) for the
# time left, so it still lasts 10 s, with the signal handled at 250 ms.
hits.clear()
ep = select.epoll()
start = time.monotonic()
signal.setitimer(signal.ITIMER_REAL, 0.25)
events = ep.poll(10)
print("epoll_events=%r after=%.6f hit=%.6f" % (events, time.monotonic() - start, hits[0] - start))
print("time=%r" % time.time())

# A child spawned (vfork and exec) while a timer is armed does not inherit it: the parent
# gets the signal, the child runs to its end.
signal.setitimer(signal.ITIMER_REAL, 0.5)
child = subprocess.run(["sh", "-c", "sleep 1; echo child-ok"], capture_output=True)
print("spawn_rc=%d out=%s" % (child.returncode, child.stdout.decode().strip()))
