# spawn.py SHIM N DIR [ENV=VAL...]: spawns N reference shims running
# `sleep 3600` under DIR (keepalive pipe, not detached: the normal attached
# case), waits for their ready bytes, prints "ready N in T s PID...", waits
# for stdin to end, then kills their process groups and reaps them. It is a
# child subreaper, so the guests are reaped too.
import ctypes, json, os, sys, time, signal
libc = ctypes.CDLL(None, use_errno=True)
libc.prctl(36, 1, 0, 0, 0)
shim, n, base = sys.argv[1], int(sys.argv[2]), sys.argv[3]
env = dict(os.environ)
for k, v in (a.split("=", 1) for a in sys.argv[4:]):
    env[k] = v
shims = []
t0 = time.monotonic()
for i in range(n):
    d = os.path.join(base, "b%04d" % i); os.makedirs(d, exist_ok=True)
    spec = {"version": 1, "engine": "process", "box_id": "b%04d" % i, "security": {},
            "guest_entrypoint": {"executable": "/usr/bin/sleep", "args": ["3600"]},
            "console_output": d + "/console.log", "exit_file": d + "/exit.json"}
    sr, sw = os.pipe(); rr, rw = os.pipe(); kr, kw = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.setpgid(0, 0); os.chdir(d)
        os.dup2(sr, 0); os.dup2(rw, 3); os.dup2(kr, 4)
        log = os.open(d + "/shim.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.dup2(log, 1); os.dup2(log, 2)
        os.closerange(5, 1024)
        os.execve(shim, [shim, "--box-id", "b%04d" % i], env)
    os.close(sr); os.close(rw); os.close(kr)
    os.write(sw, json.dumps(spec).encode()); os.close(sw)
    shims.append((pid, rr, kw))
for pid, rr, kw in shims:
    os.read(rr, 1)
print("ready", n, "in %.3f s" % (time.monotonic() - t0), " ".join(str(p) for p, _, _ in shims), flush=True)
sys.stdin.readline()
for pid, rr, kw in shims:
    try: os.kill(-pid, signal.SIGKILL)
    except OSError: pass
deadline = time.time() + 5
while time.time() < deadline:
    try:
        p, _ = os.waitpid(-1, os.WNOHANG)
    except ChildProcessError:
        break
    if p == 0: time.sleep(0.02)
