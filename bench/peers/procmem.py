"""Resident memory of this process, in MiB (Linux). Standard library only: used by our
benchmarks and by the peer scripts in their own venvs."""
import resource


def rss_mb():
  """Current resident set (VmRSS)."""
  with open("/proc/self/status") as f:
    for line in f:
      if line.startswith("VmRSS:"):
        return int(line.split()[1]) / 1024
  return float("nan")


def peak_mb():
  """Peak resident set so far (ru_maxrss is in KiB on Linux)."""
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
