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


def run(crash_at: str | None) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin"}
    if crash_at:
        env["AIRLINE_CRASH_AT"] = crash_at
    return subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True,
                          text=True, check=False)


def test_kills_at_the_nth_hit() -> None:
    done = run("demo.loop@3")
    assert done.returncode == -signal.SIGKILL
    assert done.stdout.split() == ["0", "1", "2"]


def test_other_points_and_unset_do_nothing() -> None:
    assert run("other.point").returncode == 0
    assert run(None).stdout.split() == ["0", "1", "2", "3", "4"]
