#!/usr/bin/env bash
# What the limits of an unattended run cost and how well they hold, measured against a run
# without them in the same script (the machine is shared: ratios and medians, never bare
# times). Four measurements:
#
#   checkpoints  `hash --update M --scrub 100` of medium, big and small whose manifest also
#                lists 1,000,000 lines of files outside the run (kept, so every checkpoint
#                writes them all), with `--checkpoint 1s` against `--checkpoint 0`: warm
#                (RUNS interleaved rounds, medians, the ratio), then held to 100 MiB/s for
#                about 40 s (the checkpoints written, the longest, and the CPU time).
#   bwlimit      cold `hash --bwlimit` of the medium tree at 160 MiB/s and of the small tree
#                (100,000 x 4 KiB) at 32 MiB/s (about 12 s each): the bytes read (rchar of
#                /proc/PID/io, sampled every 0.25 s) over the run against the limit, and the
#                largest one-second window against it.
#   nocache      cold `hash` of medium and big (4 x 512 MiB) with and without `--nocache`:
#                medians of RUNS interleaved rounds, the ratio, and what `fincore` finds
#                cached afterwards; then the half-warm case (every other file read first):
#                how much of that half is still cached after a `--nocache` run.
#   max-duration cold `hash --update --scrub 100 --max-duration 5s --bwlimit 100M` of big:
#                how long past the 5 s the run took (the grace is 1 s).
#
#   sudo benches/nightly.sh [DATA_DIR]
#
# Needs root (the page cache is dropped), python3, fincore (util-linux). Datasets come from
# benches/gen_datasets.py. Not part of `cargo test`.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
  echo "nightly.sh: dropping the page cache needs root; run it with sudo" >&2
  exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
data=${1:-$repo/bench-data}
RUNS=${RUNS:-3}
for tool in python3 fincore; do
  command -v "$tool" >/dev/null || { echo "nightly.sh: $tool is required" >&2; exit 2; }
done
cargo build --release --quiet --manifest-path "$repo/Cargo.toml"
sumpool=${SUMPOOL:-$repo/target/release/sumpool}
python3 "$here/gen_datasets.py" "$data" small medium big >/dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cold() { sync; echo 3 > /proc/sys/vm/drop_caches; }
seconds() { # seconds CMD...: wall time of CMD, output discarded
  python3 - "$@" <<'EOF'
import subprocess, sys, time
t = time.perf_counter()
subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
print(f"{time.perf_counter() - t:.3f}")
EOF
}
median() { python3 -c 'import statistics,sys; print(f"{statistics.median(map(float, sys.argv[1:])):.3f}")' "$@"; }
cached_pct() { # cached_pct FILE...: percent of the files' bytes in the page cache
  fincore --bytes --noheadings --output RES,SIZE "$@" |
    awk '{r += $1; s += $2} END {printf "%.1f", s ? 100 * r / s : 0}'
}

echo "== checkpoints: 1,000,000 kept lines"
cd "$data"
"$sumpool" hash medium > "$work/medium.sums"
python3 - "$work/base.sums" <<'EOF'
import hashlib, sys
with open(sys.argv[1], "w") as out:
    for i in range(1_000_000):
        d = hashlib.sha256(i.to_bytes(8, "little")).hexdigest()
        out.write(f"{d}  elsewhere/{i // 1000:04}/file-{i:07}.dat\n")
EOF
cat "$work/medium.sums" >> "$work/base.sums"
cp "$work/base.sums" "$work/M"; "$sumpool" hash --update "$work/M" medium big small >/dev/null
echo "manifest: $(wc -l < "$work/M") lines with their state lines, $(du -m "$work/M" | cut -f1) MB"
# CPU-bound (warm, a few seconds): the first checkpoint waits for 50 times what writing
# the manifest is taken to cost, so a short run writes none, and costs nothing.
on=(); off=()
for _ in $(seq "$RUNS"); do
  cp "$work/M" "$work/M0"; cp "$work/M" "$work/M1"
  off+=("$(seconds "$sumpool" hash --update "$work/M0" --scrub 100 --checkpoint 0 medium big small)")
  on+=("$(seconds "$sumpool" hash --update "$work/M1" --scrub 100 --checkpoint 1s medium big small)")
done
m_off=$(median "${off[@]}"); m_on=$(median "${on[@]}")
echo "warm, CPU-bound: --checkpoint 0: $m_off s; --checkpoint 1s: $m_on s; ratio $(python3 -c "print(f'{$m_on/$m_off:.3f}')")"
# Long (held to 100 MiB/s, about 40 s): checkpoints are written; what they cost in CPU.
for every in 0 1s; do
  cp "$work/M" "$work/M1"
  /usr/bin/time -f "--checkpoint $every: %e s wall, %U s user, %S s system" \
    "$sumpool" hash -v --update "$work/M1" --scrub 100 --bwlimit 100M --checkpoint "$every" medium big 2>&1 >/dev/null |
    grep -E "checkpoint" || true
done

echo "== bwlimit: cold, rchar sampled every 0.25 s"
for spec in "medium 160M 167772160" "small 32M 33554432"; do
  set -- $spec
  cold
  python3 - "$sumpool" "$1" "$2" "$3" <<'EOF'
import subprocess, sys, time
sumpool, tree, rate_arg, rate = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
p = subprocess.Popen([sumpool, "hash", "--bwlimit", rate_arg, tree], stdout=subprocess.DEVNULL)
samples = []
t0 = time.perf_counter()
while p.poll() is None:
    try:
        with open(f"/proc/{p.pid}/io") as f:
            io = dict(l.split(": ") for l in f.read().splitlines())
        samples.append((time.perf_counter() - t0, int(io["rchar"])))
    except (FileNotFoundError, ProcessLookupError, KeyError):
        pass
    time.sleep(0.25)
total_t, total_b = samples[-1]
worst = 0.0
for i, (t, b) in enumerate(samples):
    for t2, b2 in samples[i + 1:]:
        if t2 - t >= 1.0:
            worst = max(worst, (b2 - b) / (t2 - t))
            break
print(f"{tree} at {rate_arg}/s: {total_b/2**20:.0f} MiB in {total_t:.1f} s, "
      f"rate {total_b/total_t/rate:.3f} x the limit, largest 1-s window {worst/rate:.2f} x")
EOF
done

echo "== nocache: cold, medians of $RUNS"
for set in medium big; do
  with=(); without=()
  for _ in $(seq "$RUNS"); do
    cold; without+=("$(seconds "$sumpool" hash "$set")")
    left_plain=$(cached_pct $(find "$set" -type f))
    cold; with+=("$(seconds "$sumpool" hash --nocache "$set")")
    left_nocache=$(cached_pct $(find "$set" -type f))
  done
  m_without=$(median "${without[@]}"); m_with=$(median "${with[@]}")
  echo "$set: without $m_without s (then ${left_plain}% cached), --nocache $m_with s (then ${left_nocache}% cached); ratio $(python3 -c "print(f'{$m_with/$m_without:.3f}')")"
  cold
  mapfile -t half < <(find "$set" -type f | sort | awk 'NR % 2')
  cat "${half[@]}" > /dev/null
  before=$(cached_pct "${half[@]}")
  "$sumpool" hash --nocache "$set" >/dev/null
  echo "$set half warm: ${before}% of the warm half cached before, $(cached_pct "${half[@]}")% after; the rest $(cached_pct $(find "$set" -type f | sort | awk 'NR % 2 == 0'))%"
done

echo "== max-duration 5s, cold big at 100 MiB/s"
"$sumpool" hash --update "$work/B" big >/dev/null
cold
took=$(seconds "$sumpool" hash --update "$work/B" --scrub 100 --max-duration 5s --bwlimit 100M big)
echo "ran $took s for a 5 s box (grace 1 s)"
