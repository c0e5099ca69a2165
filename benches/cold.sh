#!/usr/bin/env bash
# Cold-cache comparison: sumpool against the one-liners a user would write, with the page
# cache dropped before every single run, and the same on network-like storage (a FUSE
# passthrough adding a delay to every open and read).
#
#   sudo benches/cold.sh [DATA_DIR] [DATASET...]
#
# Datasets of benches/gen_datasets.py (default: small tiny medium one big mixed-last). For
# each one, every command runs once per round, in turn, RUNS rounds (default 3), after
# `sync; echo 3 > /proc/sys/vm/drop_caches`: this needs root, and the script says so and
# exits otherwise. Wall time and CPU time (user + system, of the whole pipeline) come from
# GNU time; the tables show medians. Commands:
#
#   sumpool hash SET
#   find SET -type f -print0 | xargs -0 -P N -n B sha256sum          N in 2 8 16 64
#   find SET -type f -print0 | xargs -0 -P N -n B openssl dgst -sha256 -r
#   rhash -r --sha256 SET
#   find SET -type f -print0 | xargs -0 -P64 -n B cat > /dev/null      (the device reference)
#
# B is 64 files per process on small and tiny, 16 on medium and mixed-last, 1 on one and big.
# OLD=/path/to/an/older/sumpool adds that build to every table, interleaved with this one,
# for an A/B (build it with `git worktree add ../old REV`).
#
# The ideal of each dataset is what this machine allows: the slower of the cold read of the
# tree (`xargs -P64 cat`: the device) and sumpool's own warm run (the CPU; measured here too,
# RUNS times after a read that fills the page cache). The table of targets gives sumpool's
# time over the ideal.
# The FUSE case (skipped when FUSE=0, or when /dev/fuse, libfuse3 or the mfusepy module is
# missing) serves 1,000 files of 16 KiB through benches/fuse_delay.py with DELAY_MS (default
# 10) on every open and every read, and also times `xargs -P16 cat` against `xargs -P64 cat`
# to show that the harness is not the bottleneck.
#
# Needs: root, rhash, openssl, GNU time (/usr/bin/time), python3. Not part of `cargo test`.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
  echo "cold.sh: dropping the page cache needs root; run it with sudo" >&2
  exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
data=${1:-$repo/bench-data}
shift || true
datasets=("$@")
[ ${#datasets[@]} -gt 0 ] || datasets=(small tiny medium one big mixed-last)
export RUNS=${RUNS:-3}
delay=${DELAY_MS:-10}

for tool in rhash openssl /usr/bin/time python3; do
  command -v "$tool" >/dev/null || { echo "cold.sh: $tool is required" >&2; exit 2; }
done

cargo build --release --quiet --manifest-path "$repo/Cargo.toml"
sumpool=${SUMPOOL:-$repo/target/release/sumpool}
mkdir -p "$data"
python3 "$here/gen_datasets.py" "$data" "${datasets[@]}"

results=$(mktemp -d)
mnt=""
cleanup() {
  if [ -n "$mnt" ]; then umount "$mnt" 2>/dev/null || umount -l "$mnt" 2>/dev/null || true; fi
  rm -rf "$results"
}
trap cleanup EXIT

commands() {
  local set=$1 n
  case $set in
    small | tiny) n=64 ;;
    one | big) n=1 ;;
    *) n=16 ;;
  esac
  echo "sumpool|$sumpool hash $set"
  if [ -n "${OLD:-}" ]; then echo "sumpool old|$OLD hash $set"; fi
  for p in 2 8 16 64; do
    echo "sha256sum -P$p|find $set -type f -print0 | xargs -0 -P$p -n$n sha256sum"
    echo "openssl -P$p|find $set -type f -print0 | xargs -0 -P$p -n$n openssl dgst -sha256 -r"
  done
  echo "rhash|rhash -r --sha256 $set"
  echo "cat -P64|find $set -type f -print0 | xargs -0 -P64 -n$n cat"
}

cd "$data"
for set in "${datasets[@]}"; do
  # Output check first: a fast wrong answer is not a result.
  find "$set" -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum > "$results/ref"
  "$sumpool" hash "$set" > "$results/out"
  cmp -s "$results/ref" "$results/out" || { echo "cold.sh: sumpool output for $set differs from sha256sum" >&2; exit 1; }
  commands "$set" > "$results/$set.commands"
done

fuse_ok=0
if [ "${FUSE:-1}" != 0 ] && [ -e /dev/fuse ] && python3 -c 'import mfusepy' 2>/dev/null; then
  fuse_ok=1
  src=$data/fuse-src
  if [ ! -e "$data/.fuse-src.complete" ]; then
    mkdir -p "$src"
    python3 - "$src" <<'PY'
import os, sys
for i in range(1000):
    d = os.path.join(sys.argv[1], f"d{i // 100:02}")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"f{i:04}.bin"), "wb") as f:
        f.write(bytes((i * 7 + j) % 251 for j in range(16384)))
PY
    touch "$data/.fuse-src.complete"
  fi
  mnt=$(mktemp -d)
  python3 "$here/fuse_delay.py" "$src" "$mnt" --open-ms "$delay" --read-ms "$delay" \
    --ready "$results/ready" &
  for _ in $(seq 100); do [ -e "$results/ready" ] && break; sleep 0.1; done
  [ -e "$results/ready" ] || { echo "cold.sh: the FUSE passthrough did not mount" >&2; exit 1; }
  (cd "$mnt" && "$sumpool" hash .) > "$results/out"
  (cd "$src" && "$sumpool" hash .) > "$results/ref"
  cmp -s "$results/ref" "$results/out" || { echo "cold.sh: sumpool output through FUSE differs" >&2; exit 1; }
  {
    echo "sumpool|$sumpool hash ."
    for p in 16 64; do
      echo "sha256sum -P$p|find . -type f -print0 | xargs -0 -P$p -n16 sha256sum"
      echo "openssl -P$p|find . -type f -print0 | xargs -0 -P$p -n16 openssl dgst -sha256 -r"
    done
    echo "rhash|rhash -r --sha256 ."
    echo "cat -P16|find . -type f -print0 | xargs -0 -P16 -n16 cat"
    echo "cat -P64|find . -type f -print0 | xargs -0 -P64 -n16 cat"
  } > "$results/fuse.commands"
fi

python3 - "$results" "$data" "$mnt" "$fuse_ok" "${datasets[@]}" <<'PY'
import os, statistics, subprocess, sys

results, data, mnt, fuse_ok, sets = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] == "1", sys.argv[5:]
runs = int(os.environ["RUNS"])

def once(cmd, cwd):
    subprocess.run("sync; echo 3 > /proc/sys/vm/drop_caches", shell=True, check=True)
    timed = ["/usr/bin/time", "-f", "%e %U %S", "-o", f"{results}/time", "sh", "-c", cmd]
    done = subprocess.run(timed, cwd=cwd, stdout=subprocess.DEVNULL)
    if done.returncode != 0:
        # A failed run's time means nothing: the tool drops out of this table.
        print(f"cold.sh: exit status {done.returncode}, left out: {cmd}", file=sys.stderr)
        return None
    wall, user, sys_ = map(float, open(f"{results}/time").read().split()[-3:])
    return wall, user + sys_

def warm(name, cwd):
    """Median wall time of sumpool over the dataset already in the page cache."""
    cmd = [l.split("|", 1)[1].rstrip("\n") for l in open(f"{results}/{name}.commands")
           if l.startswith("sumpool|")][0]
    subprocess.run(cmd, shell=True, cwd=cwd, stdout=subprocess.DEVNULL, check=True)
    times = []
    for _ in range(runs):
        timed = ["/usr/bin/time", "-f", "%e", "-o", f"{results}/time", "sh", "-c", cmd]
        subprocess.run(timed, cwd=cwd, stdout=subprocess.DEVNULL, check=True)
        times.append(float(open(f"{results}/time").read().split()[-1]))
    return statistics.median(times)

def measure(name, cwd):
    commands = [l.rstrip("\n").split("|", 1) for l in open(f"{results}/{name}.commands") if l.strip()]
    walls = {n: [] for n, _ in commands}
    cpus = {n: [] for n, _ in commands}
    failed = set()
    for _ in range(runs):
        for n, cmd in commands:
            if n in failed:
                continue
            timed = once(cmd, cwd)
            if timed is None:
                failed.add(n)
                continue
            walls[n].append(timed[0])
            cpus[n].append(timed[1])
    if "sumpool" in failed:
        sys.exit(f"cold.sh: sumpool failed on {name}")
    rows = {n: (statistics.median(walls[n]), statistics.median(cpus[n]))
            for n, _ in commands if n not in failed}
    print(f"{name}: " + ", ".join(f"{n} {w:.2f}" for n, (w, _) in rows.items()), file=sys.stderr)
    return rows

tables = {}
warm_times = {}
for s in sets:
    tables[s] = measure(s, data)
    warm_times[s] = warm(s, data)
if fuse_ok:
    tables["fuse"] = measure("fuse", mnt)

print(f"Cold cache, medians of {runs} rounds; wall and CPU (user + system) seconds.")
print()
print("| dataset | tool | wall s | CPU s | sumpool vs this |")
print("| --- | --- | ---: | ---: | ---: |")
for s, rows in tables.items():
    sp = rows["sumpool"][0]
    for n, (w, c) in rows.items():
        ratio = "" if n == "sumpool" else f"{w / sp:.2f} x"
        print(f"| {s} | {n} | {w:.2f} | {c:.2f} | {ratio} |")

def best(rows):
    others = {n: v[0] for n, v in rows.items() if n != "sumpool" and not n.startswith("cat")}
    n = min(others, key=others.get)
    return n, others[n]

print()
print("| dataset | cold cat -P64 s | warm sumpool s | ideal s | sumpool cold s | sumpool / ideal |")
print("| --- | ---: | ---: | ---: | ---: | ---: |")
for s in sets:
    rows = tables[s]
    ideal = max(rows["cat -P64"][0], warm_times[s])
    print(f"| {s} | {rows['cat -P64'][0]:.2f} | {warm_times[s]:.2f} | {ideal:.2f} | {rows['sumpool'][0]:.2f} | {rows['sumpool'][0] / ideal:.2f} |")

print()
print("| target | measured | goal |")
print("| --- | ---: | ---: |")
for s, rows in tables.items():
    sp = rows["sumpool"][0]
    if s in ("big", "medium", "one", "mixed-last"):
        ideal = max(rows["cat -P64"][0], warm_times[s])
        print(f"| {s}: sumpool / ideal | {sp / ideal:.2f} | <= 1.15 |")
    if s in ("small", "tiny"):
        sums = {n: v[0] for n, v in rows.items() if n.startswith("sha256sum")}
        n = min(sums, key=sums.get)
        print(f"| {s}: best xargs sha256sum ({n}) / sumpool | {sums[n] / sp:.2f} x | >= 1.3 x |")
    if s == "fuse":
        print(f"| FUSE {os.environ.get('DELAY_MS', '10')} ms: sha256sum -P16 / sumpool | {rows['sha256sum -P16'][0] / sp:.2f} x | >= 1.3 x |")
        print(f"| FUSE harness: cat -P16 / cat -P64 | {rows['cat -P16'][0] / rows['cat -P64'][0]:.2f} x | well above 1 |")
    if "sumpool old" in rows:
        print(f"| {s}: sumpool / sumpool old (A/B) | {sp / rows['sumpool old'][0]:.2f} | <= 1.0 |")
PY
