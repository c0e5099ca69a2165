#!/usr/bin/env bash
# Whole-process comparison of sumpool with the tools a user would pick instead.
#
#   benches/compare.sh [DATA_DIR] [DATASET...]
#
# Generates the deterministic datasets (benches/gen_datasets.py) under DATA_DIR (default
# ./bench-data), checks that sumpool's output equals the reference checksums from GNU
# sha256sum, warms the page cache, times every tool, measures peak RSS with /usr/bin/time -v,
# and prints a markdown table and the performance targets computed from it.
#
# Timing: a warm-up round, then RUNS rounds (default 7, at least 5) in which every tool of the
# dataset runs once, in turn; the table shows each tool's median. Interleaving the tools keeps
# a slow minute on a shared machine from landing on one tool only, which back-to-back series
# (hyperfine's way) do not. `TIMER=hyperfine` times each tool as a hyperfine series instead.
#
# Needs: rhash, hashdeep, openssl, GNU time, python3, and hyperfine for TIMER=hyperfine
# (Debian: apt-get install rhash hashdeep openssl time hyperfine). Not part of `cargo test`:
# timings never gate the tests.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
data=${1:-$repo/bench-data}
shift || true
datasets=("$@")
[ ${#datasets[@]} -gt 0 ] || datasets=(big one medium small tiny mixed mixed-middle mixed-last)
runs=${RUNS:-7}
timer=${TIMER:-rounds}
jobs=$(nproc)

for tool in rhash hashdeep openssl /usr/bin/time python3; do
  command -v "$tool" >/dev/null || { echo "compare.sh: $tool is required" >&2; exit 2; }
done

# SUMPOOL=/path/to/sumpool times that build instead of this tree's (as cold.sh does).
if [ -z "${SUMPOOL:-}" ]; then
  cargo build --release --quiet --manifest-path "$repo/Cargo.toml"
fi
sumpool=${SUMPOOL:-$repo/target/release/sumpool}
mkdir -p "$data"
python3 "$here/gen_datasets.py" "$data" "${datasets[@]}"

results=$(mktemp -d)
trap 'rm -rf "$results"' EXIT

# Commands per dataset. Large files are given one per openssl/sha256sum process (-n 1),
# since SHA-256 cannot be split inside a file; small files in batches of 256. The tiny10k,
# tiny100k and tiny1m sets show how sumpool's memory grows with the tree: only sumpool runs.
commands() {
  local set=$1 n=256
  case $set in big | one) n=1 ;; esac
  echo "sumpool|$sumpool hash $set"
  echo "sumpool check|$sumpool check $results/$set.ref"
  case $set in tiny?*) return ;; esac
  echo "sha256sum|find $set -type f -print0 | xargs -0 sha256sum"
  echo "sha256sum -P$jobs|find $set -type f -print0 | xargs -0 -P$jobs -n$n sha256sum"
  echo "openssl -P$jobs|find $set -type f -print0 | xargs -0 -P$jobs -n$n openssl dgst -sha256 -r"
  if [ "$set" = one ]; then echo "openssl|openssl dgst -sha256 -r $set/one.bin"; fi
  echo "rhash|rhash -r --sha256 $set"
  echo "hashdeep|hashdeep -r -c sha256 -j$jobs $set"
}

cd "$data"
for set in "${datasets[@]}"; do
  # Reference checksums from GNU sha256sum; the names sort in walk order by construction.
  find "$set" -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum > "$results/$set.ref"
  "$sumpool" hash "$set" > "$results/$set.out"
  if ! cmp -s "$results/$set.ref" "$results/$set.out"; then
    echo "compare.sh: sumpool output for $set differs from sha256sum" >&2
    exit 1
  fi
  "$sumpool" check --quiet "$results/$set.ref"
  # Warm the page cache.
  find "$set" -type f -print0 | xargs -0 cat > /dev/null
  files=$(wc -l < "$results/$set.ref")
  bytes=$(find "$set" -type f -printf '%s\n' | awk '{s+=$1} END {printf "%.0f\n", s}')
  commands "$set" > "$results/$set.commands"
  if [ "$timer" = hyperfine ]; then
    while IFS='|' read -r name cmd; do
      hyperfine --warmup 1 --runs "$runs" --style none --output null \
        --export-json "$results/$set.$name.json" "$cmd" >/dev/null
    done < "$results/$set.commands"
  else
    python3 "$here/time_rounds.py" "$runs" "$results/$set.commands" "$results/$set"
  fi
  while IFS='|' read -r name cmd; do
    rss=$(/usr/bin/time -v sh -c "$cmd > /dev/null" 2>&1 | awk '/Maximum resident/ {print $6}')
    echo "$set|$name|$files|$bytes|$rss|$results/$set.$name.json" >> "$results/index"
  done < "$results/$set.commands"
done

# Stragglers: a 1 GiB file first (mixed), in the middle (mixed-middle) or last (mixed-last)
# in walk order, against the ideal: the larger of the 1 GiB file alone (one core) and the
# work of medium (both cores busy) plus that file spread over two cores. sumpool alone, the
# five runs interleaved in the same rounds, so that the ratios do not mix minutes of a
# shared machine.
: > "$results/straggler.commands"
if [[ " ${datasets[*]} " == *" one "* && " ${datasets[*]} " == *" medium "* ]]; then
  for set in mixed mixed-middle mixed-last; do
    [[ " ${datasets[*]} " == *" $set "* ]] || continue
    [ -s "$results/straggler.commands" ] ||
      printf 'one|%s hash one\nmedium|%s hash medium\n' "$sumpool" "$sumpool" > "$results/straggler.commands"
    echo "$set|$sumpool hash $set" >> "$results/straggler.commands"
  done
  if [ -s "$results/straggler.commands" ]; then
    python3 "$here/time_rounds.py" "$runs" "$results/straggler.commands" "$results/straggler"
  fi
fi

python3 - "$results/index" "$results/straggler" <<'PY'
import json, statistics, sys
rows = [line.rstrip("\n").split("|") for line in open(sys.argv[1])]
by_set = {}
for set_, name, files, size, rss, path in rows:
    times = json.load(open(path))["results"][0]["times"]
    by_set.setdefault(set_, {})[name] = (int(files), int(size), int(rss), statistics.median(times))

print("| dataset | tool | median wall s | MB/s | files/s | peak RSS MiB | sumpool vs best other |")
print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
for set_, entries in by_set.items():
    others = {k: v for k, v in entries.items() if not k.startswith("sumpool")}
    best = min(others, key=lambda k: others[k][3]) if others else None
    for name, (files, size, rss, t) in entries.items():
        ratio = ""
        if name.startswith("sumpool") and best:
            ratio = f"{others[best][3] / t:.2f} x {best}"
        print(f"| {set_} | {name} | {t:.3f} | {size / t / 1e6:.0f} | {files / t:.0f} | {rss / 1024:.1f} | {ratio} |")

# The issue's targets, computed from this run.
def t(set_, name):
    return by_set.get(set_, {}).get(name, (0, 0, 0, None))[3]

def best_other(set_):
    others = [v[3] for k, v in by_set.get(set_, {}).items() if not k.startswith("sumpool")]
    return min(others) if others else None

print()
print("| target | measured | goal |")
print("| --- | ---: | ---: |")
for set_, goal in [("big", 1.15), ("medium", 1.15), ("small", 2.5), ("tiny", 2.2)]:
    if t(set_, "sumpool") and best_other(set_):
        print(f"| {set_}: speed-up over the best alternative | {best_other(set_) / t(set_, 'sumpool'):.2f} x | >= {goal} x |")
if t("one", "sumpool") and t("one", "openssl"):
    print(f"| one: speed-up over openssl dgst | {t('one', 'openssl') / t('one', 'sumpool'):.2f} x | >= 1.12 x |")
# Stragglers, from the interleaved rounds: wall / max(one, (2 x medium + one) / 2).
import os
strag = {}
for name in ("one", "medium", "mixed", "mixed-middle", "mixed-last"):
    path = f"{sys.argv[2]}.{name}.json"
    if os.path.exists(path):
        strag[name] = statistics.median(json.load(open(path))["results"][0]["times"])
if "one" in strag and "medium" in strag:
    ideal = max(strag["one"], (2 * strag["medium"] + strag["one"]) / 2)
    for mixed in ("mixed", "mixed-middle", "mixed-last"):
        if mixed in strag:
            print(f"| {mixed}: wall / max(1 GiB alone, medium's work + 1 GiB over two cores) | {strag[mixed] / ideal:.2f} | <= 1.10 |")
for set_, entries in by_set.items():
    if "sumpool check" in entries and "sumpool" in entries:
        print(f"| {set_}: check time / hash time | {t(set_, 'sumpool check') / t(set_, 'sumpool'):.2f} | <= 1.10 |")
peak = max((v[2] for e in by_set.values() for k, v in e.items() if k.startswith("sumpool")), default=0)
print(f"| peak RSS of sumpool over all datasets | {peak / 1024:.1f} MiB | <= 32 MiB |")
PY
