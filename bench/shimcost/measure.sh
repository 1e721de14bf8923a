#!/bin/bash
# measure.sh SHIM N [ENV=VAL...]: starts N idle reference shims running
# `sleep 3600` (spawn.py speaks the shim contract: spec on stdin, ready pipe
# on fd 3, keepalive on fd 4) and prints the median (min, max) of their
# minor page faults, threads, private memory (Pss_Anon) and PSS, in KiB.
# ENV=VAL pairs go into the shims' environment (e.g. GOMAXPROCS=1).
# Needs Linux and python3; kills and reaps the shims at the end.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
shim=$(readlink -f "$1"); n=$2; shift 2
d=$(mktemp -d)
trap 'rm -rf "$d"' EXIT
exec 9> >(python3 "$here/spawn.py" "$shim" "$n" "$d" "$@" > "$d/out.txt")
for _ in $(seq 400); do [ -s "$d/out.txt" ] && break; sleep 0.05; done
sleep 1
ready=$(awk '{print $4}' "$d/out.txt")
pids=$(cut -d' ' -f6- "$d/out.txt")
mf=(); th=(); pa=(); ps=()
for P in $pids; do
	mf+=("$(awk '{print $10}' "/proc/$P/stat")")
	th+=("$(awk '/^Threads:/{print $2}' "/proc/$P/status")")
	pa+=("$(awk '/^Pss_Anon:/{print $2}' "/proc/$P/smaps_rollup")")
	ps+=("$(awk '/^Pss:/{print $2}' "/proc/$P/smaps_rollup")")
done
med() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END{printf "%s (min %s, max %s)", a[int((NR+1)/2)], a[1], a[NR]}'; }
echo "minflt $(med "${mf[@]}"); threads $(med "${th[@]}"); Pss_Anon KiB $(med "${pa[@]}"); Pss KiB $(med "${ps[@]}"); $n ready in ${ready}s"
exec 9>&-
sleep 0.5
