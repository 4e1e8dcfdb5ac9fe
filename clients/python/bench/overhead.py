"""The SDK's added CPU per call over a raw httpx request of the same route (`GET /sessions/{id}`),
on one shared httpx.Client, against a running gateway (THREADLINE_BASE_URL, THREADLINE_API_KEY).

    python bench/overhead.py [calls]      # prints process CPU ms per call: raw, sdk, and the difference

CPU time of this process only (time.process_time), so the gateway's own time does not count; the
SDK's part is building the request, the retry loop, parsing the JSON into a pydantic `Session`.
"""

from __future__ import annotations

import os
import sys
import time

import httpx

from threadline import Threadline


def main(calls: int) -> None:
    base, key = os.environ["THREADLINE_BASE_URL"], os.environ["THREADLINE_API_KEY"]
    http = httpx.Client()
    with Threadline(base, api_key=key, http_client=http) as tl:
        session_id = tl.sessions.create(user_id="bench-overhead").session_id
        headers = {"authorization": f"Bearer {key}", "accept": "application/json"}
        url = f"{base}/sessions/{session_id}"

        def raw() -> None:
            response = http.get(url, headers=headers)
            response.raise_for_status()
            response.json()

        def sdk() -> None:
            tl.sessions.get(session_id)

        results = {}
        for _round in range(3):  # interleaved rounds; the median of each is reported
            for name, fn in (("raw", raw), ("sdk", sdk)):
                for _ in range(50):
                    fn()
                start = time.process_time()
                for _ in range(calls):
                    fn()
                results.setdefault(name, []).append((time.process_time() - start) * 1000 / calls)
        raw_ms = sorted(results["raw"])[1]
        sdk_ms = sorted(results["sdk"])[1]
        print(f"calls={calls} raw_cpu_ms={raw_ms:.3f} sdk_cpu_ms={sdk_ms:.3f} overhead_ms={sdk_ms - raw_ms:.3f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000)
