"""Crash points kill the process with SIGKILL at the chosen hit, and cost nothing otherwise."""

import signal
import subprocess
import sys

SCRIPT = (
    "from airline_core.crash import crash_point\n"
    "for i in range(5):\n"
    "    print(i, flush=True)\n"
    "    crash_point('demo.loop')\n"
)


#: Batches of 3, 1 and 4 passes: hits 1-3, 4, 5-8.
BATCHES = (
    "from airline_core.crash import crash_point\n"
    "for size in (3, 1, 4):\n"
    "    print(size, flush=True)\n"
    "    crash_point('demo.batch', passes=size)\n"
)


def run(crash_at: str | None, script: str = SCRIPT) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin"}
    if crash_at:
        env["AIRLINE_CRASH_AT"] = crash_at
    return subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          text=True, check=False)


def test_kills_at_the_nth_hit() -> None:
    done = run("demo.loop@3")
    assert done.returncode == -signal.SIGKILL
    assert done.stdout.split() == ["0", "1", "2"]


def test_other_points_and_unset_do_nothing() -> None:
    assert run("other.point").returncode == 0
    assert run(None).stdout.split() == ["0", "1", "2", "3", "4"]


def test_a_batch_of_passes_dies_when_the_chosen_hit_falls_in_it() -> None:
    for hit, printed in ((1, ["3"]), (3, ["3"]), (4, ["3", "1"]), (5, ["3", "1", "4"]),
                         (8, ["3", "1", "4"])):
        done = run(f"demo.batch@{hit}", BATCHES)
        assert (done.returncode, done.stdout.split()) == (-signal.SIGKILL, printed), hit
    assert run("demo.batch@9", BATCHES).returncode == 0
