"""Container liveness check: exit 0 when the process answers HTTP, 1 otherwise.

Usage: latam-healthcheck [URL]   (default http://127.0.0.1:$PORT/healthz)

Any HTTP answer below 500 counts as alive: this probes the process, not its
dependencies (that is /readyz), and a Host-header rejection (400) still proves the
server is up. Standard library only, so the slim image needs no curl.
"""

import os
import sys
import urllib.error
import urllib.request


def main() -> int:
    default_url = f"http://127.0.0.1:{os.environ.get('PORT', '8080')}/healthz"
    url = sys.argv[1] if len(sys.argv) > 1 else default_url
    if not url.startswith(("http://127.0.0.1:", "http://localhost:")):
        print(f"refusing non-local URL: {url}", file=sys.stderr)
        return 2
    try:
        # Only http://127.0.0.1 / localhost reaches here (checked above).
        with urllib.request.urlopen(url, timeout=4) as response:  # noqa: S310  # nosec B310
            status = response.status
    except urllib.error.HTTPError as error:
        status = error.code
    except (urllib.error.URLError, OSError) as error:
        print(f"unhealthy: {url}: {error}", file=sys.stderr)
        return 1
    if status >= 500:
        print(f"unhealthy: {url}: HTTP {status}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
