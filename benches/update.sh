#!/usr/bin/env bash
# Benchmarks of `sumpool hash --update` (incremental manifests), as ratios in one run:
#
#   benches/update.sh [DATA_DIR] [DATASET...]      (datasets of gen_datasets.py)
#
# - warm, unchanged tree: --update against `find PATH -type f -printf '%s %T@ %C@ %i %p\n'`
#   (the stat walk it has to do) and against a full `sumpool hash`;
# - cold, unchanged tree (page cache dropped before every run; needs root, else skipped):
#   --update against a cold find;
# - 1% of the files of medium modified before every run: --update against the stat walk
#   plus the time to hash just those files (`sumpool hash FILE...`).
#
# Medians of RUNS (default 7) interleaved rounds. The datasets are not changed: the tree
# for the modified case is a copy (medium-upd) whose files are rewritten in turn.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
data=${1:-$repo/bench-data}
shift || true
datasets=("$@")
[ ${#datasets[@]} -gt 0 ] || datasets=(small tiny medium big)
export RUNS=${RUNS:-7}

cargo build --release --quiet --manifest-path "$repo/Cargo.toml"
export SUMPOOL=$repo/target/release/sumpool
mkdir -p "$data"
python3 "$here/gen_datasets.py" "$data" "${datasets[@]}"
cd "$data"
if [[ " ${datasets[*]} " == *" medium "* ]] && [ ! -e .medium-upd.complete ]; then
  rm -rf medium-upd && cp -r medium medium-upd && touch .medium-upd.complete
fi
# Files written a moment ago are racy and read again; let the copy age past the margin.
sleep 3

python3 - "${datasets[@]}" <<'PY'
import os, statistics, subprocess, sys, tempfile, time

sumpool, runs = os.environ["SUMPOOL"], int(os.environ["RUNS"])
root = os.getuid() == 0
work = tempfile.mkdtemp(prefix="sumpool-update-bench-")

def run(cmd, cold=False):
    if cold:
        subprocess.run("sync; echo 3 > /proc/sys/vm/drop_caches", shell=True, check=True)
    start = time.perf_counter()
    subprocess.run(cmd, shell=True, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start

def rounds(commands, cold=False, before=None):
    """Median of `runs` interleaved rounds (after a warm-up round) of each command."""
    times = {name: [] for name, _ in commands}
    for r in range(runs + 1):
        for name, cmd in commands:
            if before:
                before(name)
            t = run(cmd, cold)
            if r > 0:
                times[name].append(t)
    return {name: statistics.median(ts) for name, ts in times.items()}

def find(path):
    return f"find {path} -type f -printf '%s %T@ %C@ %i %p\\n' > /dev/null"

rows = []
for set_ in sys.argv[1:]:
    manifest = os.path.join(work, set_ + ".sums")
    subprocess.run([sumpool, "hash", "--update", manifest, set_], check=True)
    update = f"{sumpool} hash --update {manifest} {set_}"
    cmds = [("update", update), ("find", find(set_))]
    if set_ in ("medium", "big", "one", "mixed"):
        cmds.append(("hash", f"{sumpool} hash {set_}"))
    warm = rounds(cmds)
    rows.append((set_, "warm, unchanged", "update / find", warm["update"] / warm["find"], "<= 1.0"))
    if "hash" in warm:
        rows.append((set_, "warm, unchanged", "hash / update", warm["hash"] / warm["update"], ">= 30"))
    print(set_, "warm", {k: round(v, 3) for k, v in warm.items()}, file=sys.stderr)
    if root:
        cold = rounds([("update", update), ("find", find(set_))], cold=True)
        rows.append((set_, "cold, unchanged", "update / find", cold["update"] / cold["find"], "<= 1.0"))
        print(set_, "cold", {k: round(v, 3) for k, v in cold.items()}, file=sys.stderr)

if "medium" in sys.argv[1:]:
    tree = "medium-upd"
    files = sorted(os.path.join(d, f) for d, _, fs in os.walk(tree) for f in fs)
    picked = files[::100]  # 1% of the files
    manifest = os.path.join(work, "medium-upd.sums")
    subprocess.run([sumpool, "hash", "--update", manifest, tree], check=True)
    state = {"flip": 0}

    def modify(name):
        # Before each update: rewrite the first byte of 1% of the files (a new value each
        # round), then wait out the racy margin so only they are read.
        if name != "update":
            return
        state["flip"] += 1
        for path in picked:
            with open(path, "r+b") as f:
                f.write(bytes([state["flip"] % 256]))
        time.sleep(2.1)

    listed = " ".join(picked)
    times = rounds([
        ("update", f"{sumpool} hash --update {manifest} {tree}"),
        ("walk", find(tree)),
        ("hash those", f"{sumpool} hash {listed}"),
    ], before=modify)
    bound = times["walk"] + 1.1 * times["hash those"]
    rows.append(("medium", "1% modified", "update / (walk + 1.1 x hash those)", times["update"] / bound, "<= 1.0"))
    print("medium 1%", {k: round(v, 3) for k, v in times.items()}, file=sys.stderr)

print("| dataset | case | ratio | measured | goal |")
print("| --- | --- | --- | ---: | ---: |")
for set_, case, ratio, value, goal in rows:
    print(f"| {set_} | {case} | {ratio} | {value:.2f} | {goal} |")
PY
