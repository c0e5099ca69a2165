#!/usr/bin/env bash
# Whole-process comparison of sumpool with the tools a user would pick instead.
#
#   benches/compare.sh [DATA_DIR] [DATASET...]
#
# Generates the deterministic datasets (benches/gen_datasets.py) under DATA_DIR (default
# ./bench-data), checks that sumpool's output equals the reference checksums from GNU
# sha256sum, warms the page cache, times every tool with hyperfine (median of at least 5 runs
# after a warm-up run), measures peak RSS with /usr/bin/time -v, and prints a markdown table.
# Needs: hyperfine, rhash, hashdeep, openssl, GNU time (Debian: apt-get install hyperfine rhash
# hashdeep openssl time). Not part of `cargo test`: timings never gate the tests.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
data=${1:-$repo/bench-data}
shift || true
datasets=("$@")
[ ${#datasets[@]} -gt 0 ] || datasets=(big one medium small tiny mixed)
runs=${RUNS:-5}
jobs=$(nproc)

for tool in hyperfine rhash hashdeep openssl /usr/bin/time python3; do
  command -v "$tool" >/dev/null || { echo "compare.sh: $tool is required" >&2; exit 2; }
done

cargo build --release --quiet --manifest-path "$repo/Cargo.toml"
sumpool=$repo/target/release/sumpool
mkdir -p "$data"
python3 "$here/gen_datasets.py" "$data" "${datasets[@]}"

results=$(mktemp -d)
trap 'rm -rf "$results"' EXIT

# Commands per dataset. Large files are given one per openssl/sha256sum process (-n 1),
# since SHA-256 cannot be split inside a file; small files in batches of 256.
commands() {
  local set=$1 n=256
  case $set in big | one) n=1 ;; esac
  echo "sumpool|$sumpool hash $set"
  echo "sumpool check|$sumpool check $results/$set.ref"
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
  bytes=$(find "$set" -type f -printf '%s\n' | awk '{s+=$1} END {printf "%d\n", s}')
  while IFS='|' read -r name cmd; do
    hyperfine --warmup 1 --runs "$runs" --style none --output null \
      --export-json "$results/$set.$name.json" "$cmd" >/dev/null
    rss=$(/usr/bin/time -v sh -c "$cmd > /dev/null" 2>&1 | awk '/Maximum resident/ {print $6}')
    echo "$set|$name|$files|$bytes|$rss|$results/$set.$name.json" >> "$results/index"
  done < <(commands "$set")
done

python3 - "$results/index" <<'PY'
import json, statistics, sys
rows = [line.rstrip("\n").split("|") for line in open(sys.argv[1])]
by_set = {}
for set_, name, files, size, rss, path in rows:
    times = json.load(open(path))["results"][0]["times"]
    by_set.setdefault(set_, []).append((name, int(files), int(size), int(rss), statistics.median(times)))
print("| dataset | tool | median wall s | MB/s | files/s | peak RSS MiB | sumpool speed-up |")
print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
for set_, entries in by_set.items():
    others = [e for e in entries if not e[0].startswith("sumpool")]
    best = min(others, key=lambda e: e[4])
    for name, files, size, rss, t in entries:
        ratio = f"{best[4] / t:.2f} x {best[0]}" if name.startswith("sumpool") else ""
        print(f"| {set_} | {name} | {t:.3f} | {size / t / 1e6:.0f} | {files / t:.0f} | {rss / 1024:.1f} | {ratio} |")
PY
