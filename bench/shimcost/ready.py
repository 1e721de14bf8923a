# ready.py N SHIM[:ENV=VAL,...] ...: start→ready of each shim variant,
# interleaved, N times each (after 3 unrecorded): fork until the ready byte,
# guest `sleep 3600`, keepalive pipe. Kills and reaps every shim and guest.
import ctypes, json, os, sys, time, signal, statistics, tempfile, shutil
libc = ctypes.CDLL(None, use_errno=True)
libc.prctl(36, 1, 0, 0, 0)
n = int(sys.argv[1]); variants = []
for a in sys.argv[2:]:
    shim, _, envs = a.partition(":")
    env = dict(os.environ)
    for kv in filter(None, envs.split(",")):
        k, v = kv.split("=", 1); env[k] = v
    variants.append((a, shim, env))
base = tempfile.mkdtemp(prefix="shim-ready-")
res = {a: [] for a, _, _ in variants}
for i in range(n + 3):
    order = variants if i % 2 == 0 else variants[::-1]
    for a, shim, env in order:
        d = os.path.join(base, "b%05d" % i); os.makedirs(d, exist_ok=True)
        spec = json.dumps({"version": 1, "engine": "process", "box_id": "b", "security": {},
                "guest_entrypoint": {"executable": "/usr/bin/sleep", "args": ["3600"]},
                "console_output": d + "/console.log", "exit_file": d + "/exit.json"}).encode()
        sr, sw = os.pipe(); rr, rw = os.pipe(); kr, kw = os.pipe()
        log = os.open(d + "/shim.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        t0 = time.perf_counter()
        pid = os.fork()
        if pid == 0:
            os.setpgid(0, 0); os.chdir(d)
            os.dup2(sr, 0); os.dup2(rw, 3); os.dup2(kr, 4); os.dup2(log, 1); os.dup2(log, 2)
            os.closerange(5, 1024)
            os.execve(shim, [shim, "--box-id", "b"], env)
        os.close(sr); os.close(rw); os.close(kr); os.close(log)
        os.write(sw, spec); os.close(sw)
        b = os.read(rr, 1)
        t = time.perf_counter() - t0
        if i >= 3: res[a].append(t * 1000)
        os.kill(-pid, signal.SIGKILL); os.waitpid(pid, 0)
        os.close(rr); os.close(kw)
        while True:
            try:
                p, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if p == 0: break
for a, v in res.items():
    v.sort()
    print("%-40s p50 %.2f ms  p90 %.2f ms  p99 %.2f ms  (n=%d)" % (a.split("/")[-1], statistics.median(v), v[int(len(v)*0.9)-1], v[int(len(v)*0.99)-1], len(v)))
shutil.rmtree(base)
