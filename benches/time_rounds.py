#!/usr/bin/env python3
"""Time shell commands in interleaved rounds: time_rounds.py RUNS COMMANDS_FILE OUT_PREFIX.

COMMANDS_FILE holds `name|command` lines. One warm-up round, then RUNS rounds in which each
command runs once, in turn, with stdout discarded. Writes OUT_PREFIX.NAME.json in hyperfine's
export shape ({"results": [{"command": ..., "times": [...]}]}), so compare.sh reads either.
A command that fails stops the benchmark: a timing of a failed run means nothing.
"""

import json
import subprocess
import sys
import time


def run(command):
    start = time.perf_counter()
    done = subprocess.run(command, shell=True, stdout=subprocess.DEVNULL)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"time_rounds.py: exit status {done.returncode}: {command}")
    return elapsed


def main():
    runs, commands_file, prefix = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    commands = [line.rstrip("\n").split("|", 1) for line in open(commands_file) if line.strip()]
    times = {name: [] for name, _ in commands}
    for round_ in range(runs + 1):
        for name, command in commands:
            elapsed = run(command)
            if round_ > 0:
                times[name].append(elapsed)
    for name, command in commands:
        with open(f"{prefix}.{name}.json", "w") as out:
            json.dump({"results": [{"command": command, "times": times[name]}]}, out)


if __name__ == "__main__":
    main()
