"""Exit 0 when the package index URL (argv[1]) answers within 5 seconds, else 1.

Used by the Makefile before it installs torch from PyTorch's CPU wheel index:
one quick probe instead of pip's retries against an unreachable host."""
import sys
import urllib.request

url = sys.argv[1].rstrip("/") + "/torch/"
try:
    with urllib.request.urlopen(url, timeout=5) as r:
        sys.exit(0 if r.status < 400 else 1)
except Exception:
    sys.exit(1)
