#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
"""redis-py against a kvs-server: the default pipeline() (MULTI/EXEC),
WATCH with a transaction() retry loop from 8 threads, and info("keyspace").
Usage: redis_py_pipeline.py PORT"""
import sys
import threading

import redis

port = int(sys.argv[1])
r = redis.Redis(host="127.0.0.1", port=port)
r.flushall()

# The default pipeline wraps its commands in MULTI/EXEC.
with r.pipeline() as p:
    p.set("a", 1).incr("a").get("a").mset({"b": "x", "c": "y"}).append("b", "z")
    res = p.execute()
assert res == [True, 2, b"2", True, 2], res

# A queueing error: redis-py raises, and nothing was applied.
try:
    with r.pipeline() as p:
        p.set("d", 1).execute_command("NOSUCHCOMMAND").set("e", 1)
        p.execute()
    raise AssertionError("EXECABORT expected")
except redis.exceptions.ResponseError:
    pass
assert r.exists("d", "e") == 0

# WATCH/MULTI/EXEC optimistic lock: 8 clients, one counter, exact total.
r.set("counter", 0)
ROUNDS = 200


def worker():
    c = redis.Redis(host="127.0.0.1", port=port)

    def incr(pipe):
        v = int(pipe.get("counter"))
        pipe.multi()
        pipe.set("counter", v + 1)

    for _ in range(ROUNDS):
        c.transaction(incr, "counter")


threads = [threading.Thread(target=worker) for _ in range(8)]
for t in threads:
    t.start()
for t in threads:
    t.join()
assert int(r.get("counter")) == 8 * ROUNDS, r.get("counter")

# info("keyspace") parses: db0 is the only entry.
ks = r.info("keyspace")
assert list(ks) == ["db0"] and ks["db0"]["keys"] >= 1, ks
print("redis-py: pipeline, transaction() x8 and info(keyspace) ok")
