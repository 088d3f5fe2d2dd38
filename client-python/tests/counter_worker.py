"""One OS process of the counter test: `count` increments of the integer in `path`, each under
`with locks.lock(name)`. Prints the fencing tokens it held, as JSON. Usage: counter_worker.py NAME PATH COUNT
(EDGELOCK_URL and EDGELOCK_TOKEN from the environment).
"""

from __future__ import annotations

import json
import sys

import support

name, path, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
locks = support.make_client()
tokens = []
for _ in range(count):
    with locks.lock(name, ttl=10, wait=120) as lease:
        with open(path) as file:
            value = int(file.read())
        with open(path, "w") as file:  # not atomic on purpose: only the lock keeps the increments exact
            file.write(str(value + 1))
        tokens.append(lease.token)
locks.close()
print(json.dumps(tokens))
