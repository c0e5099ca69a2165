#!/usr/bin/env bash
# Every algorithm, warm cache: sumpool against the tool each algorithm's users run.
#
#   benches/algorithms.sh [DATA_DIR] [DATASET...]
#
# DATA_DIR (default ./bench-data) holds the datasets of benches/gen_datasets.py; they are
# generated only if missing. DATASET is any of medium (2,000 files of 1 MiB), small (100,000
# of 4 KiB) and one (one file of 1 GiB); all three by default. ALGORITHMS (environment,
# space-separated) picks algorithms; RUNS (default 5) the timed rounds.
#
# For each algorithm and tree, sumpool runs against `find | xargs -0 -P N -n M TOOL` for N =
# 1, 2 and 4 (M = 64 files per process on medium, 256 on small) and the table shows the best
# N; on `one`, against the tool on the file. TOOL is the GNU *sum program, b2sum, b3sum, or
# `openssl dgst -sha3-*` for SHA-3 (coreutils 9.1 has no SHA-3). A last group times one run
# of `-a sha256,md5,sha1,blake2b` against four runs of one algorithm each: what reading each
# file once saves.
#
# Timing is benches/time_rounds.py's: a warm-up round, then RUNS rounds in which every command
# of a group runs once, in turn; medians. Before timing, sumpool's output of every algorithm is
# checked against the tool's (the GNU tools' lines byte for byte; b3sum's too; openssl's
# digests). Needs b3sum (`cargo install b3sum`), openssl, python3. Not part of `cargo test`:
# timings never gate the tests.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
data=${1:-$repo/bench-data}
shift || true
datasets=("$@")
[ ${#datasets[@]} -gt 0 ] || datasets=(medium small one)
runs=${RUNS:-5}
algorithms=(${ALGORITHMS:-md5 sha1 sha224 sha256 sha384 sha512 sha3-256 sha3-512 blake2b blake3})

for tool in b3sum openssl python3 b2sum md5sum; do
  command -v "$tool" >/dev/null || { echo "algorithms.sh: $tool is required" >&2; exit 2; }
done

cargo build --release --quiet --manifest-path "$repo/Cargo.toml"
sumpool=$repo/target/release/sumpool
mkdir -p "$data"
python3 "$here/gen_datasets.py" "$data" "${datasets[@]}"
results=$(mktemp -d)
trap 'rm -rf "$results"' EXIT
cd "$data"

# The program a user of each algorithm runs, and how its digests compare with sumpool's
# (`lines`: byte for byte; `digests`: the first field of each line).
tool_of() {
  case $1 in
    md5) echo "md5sum|lines" ;;
    sha1 | sha224 | sha256 | sha384 | sha512) echo "${1}sum|lines" ;;
    sha3-*) echo "openssl dgst -${1} -r|digests" ;;
    blake2b) echo "b2sum|lines" ;;
    blake3) echo "b3sum|lines" ;;
  esac
}

for set in "${datasets[@]}"; do
  find "$set" -type f -print0 | xargs -0 cat > /dev/null
  find "$set" -type f -print0 | LC_ALL=C sort -z > "$results/$set.files"
done

# Same output first: a timing of a wrong answer means nothing.
for alg in "${algorithms[@]}"; do
  IFS='|' read -r tool compare <<< "$(tool_of "$alg")"
  set=${datasets[0]}
  xargs -0 -n 256 $tool < "$results/$set.files" > "$results/ref"
  "$sumpool" hash -a "$alg" "$set" > "$results/ours"
  if [ "$compare" = digests ]; then
    cut -d' ' -f1 "$results/ref" > "$results/ref.1" && mv "$results/ref.1" "$results/ref"
    cut -d' ' -f1 "$results/ours" > "$results/ours.1" && mv "$results/ours.1" "$results/ours"
  fi
  cmp -s "$results/ref" "$results/ours" ||
    { echo "algorithms.sh: sumpool -a $alg differs from $tool on $set" >&2; exit 1; }
done

for alg in "${algorithms[@]}"; do
  IFS='|' read -r tool _ <<< "$(tool_of "$alg")"
  for set in "${datasets[@]}"; do
    group="$alg.$set"
    {
      echo "sumpool|$sumpool hash -a $alg $set"
      if [ "$set" = one ]; then
        echo "tool|$tool one/one.bin"
      else
        n=64
        [ "$set" = small ] && n=256
        for p in 1 2 4; do
          echo "P$p|xargs -0 -P$p -n$n $tool < $results/$set.files"
        done
      fi
    } > "$results/$group.commands"
    python3 "$here/time_rounds.py" "$runs" "$results/$group.commands" "$results/$group"
    echo "$alg|$set|$results/$group" >> "$results/index"
  done
done

# One read for four digests, against four runs.
if [[ " ${datasets[*]} " == *" medium "* ]]; then
  {
    echo "together|$sumpool hash -a sha256,md5,sha1,blake2b medium"
    echo "apart|for a in sha256 md5 sha1 blake2b; do $sumpool hash -a \$a medium; done"
  } > "$results/multi.commands"
  python3 "$here/time_rounds.py" "$runs" "$results/multi.commands" "$results/multi"
fi

python3 - "$results" <<'PY'
import glob, json, os, statistics, sys
results = sys.argv[1]
def median(prefix, name):
    path = f"{prefix}.{name}.json"
    if not os.path.exists(path):
        return None
    return statistics.median(json.load(open(path))["results"][0]["times"])

sizes = {"medium": 2000 * 2**20, "small": 100_000 * 4096, "one": 2**30}
print("| algorithm | dataset | sumpool s | sumpool MB/s | best other | other s | sumpool speed-up |")
print("| --- | --- | ---: | ---: | --- | ---: | ---: |")
for line in open(f"{results}/index"):
    alg, set_, prefix = line.rstrip("\n").split("|")
    ours = median(prefix, "sumpool")
    others = {n: median(prefix, n) for n in ("tool", "P1", "P2", "P4")}
    others = {n: t for n, t in others.items() if t is not None}
    best = min(others, key=others.get)
    label = "the tool" if best == "tool" else f"xargs -{best}"
    print(f"| {alg} | {set_} | {ours:.3f} | {sizes[set_] / ours / 1e6:.0f} | {label} | "
          f"{others[best]:.3f} | {others[best] / ours:.2f} x |")
together, apart = median(f"{results}/multi", "together"), median(f"{results}/multi", "apart")
if together and apart:
    print()
    print(f"medium, -a sha256,md5,sha1,blake2b: {together:.3f} s in one read, {apart:.3f} s "
          f"in four runs: {apart / together:.2f} x")
PY
