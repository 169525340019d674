"""The cluster's keys and its Lua scripts: each script is one atomic step of a flow (a route
change with its event, a client id's claim), so no other node sees it half done.

Keys that are written together share a ``{...}`` hash tag, so the layout also works on Redis
Cluster.
"""

from __future__ import annotations

import hashlib

EPOCH = "mq:epoch"
MEMBERS = "mq:members"
ROUTE_EVENTS = "mq:rt"
RETAINED_EVENTS = "mq:ret:ev"
RETAINED = "mq:ret:{ret}"
RETAINED_VERSION = "mq:retver:{ret}"
GROUP = "b"


def node_key(node: str) -> str:
    return f"mq:node:{{{node}}}"


def routes_key(node: str) -> str:
    return f"mq:routes:{{{node}}}"


def routes_version_key(node: str) -> str:
    return f"mq:rtver:{{{node}}}"


def inbox_key(node: str) -> str:
    return f"mq:in:{{{node}}}"


def owner_key(client_id: str) -> str:
    return f"mq:cl:{{{client_id}}}"


def adopt_key(node: str) -> str:
    """The lock one survivor takes to adopt a dead node's sessions."""
    return f"mq:adopt:{{{node}}}"


def adopted_key(node: str) -> str:
    """Set once a node was adopted: that process, if only paused, must join again."""
    return f"mq:adopted:{{{node}}}"


class Script:
    __slots__ = ("sha", "source")

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()


# KEYS: routes set, its version. ARGV: node, wall time, then "+filter" / "-filter" ops, or
# none with ARGV[3] == "=": replace the set by ARGV[4..] (a node's (re)registration).
ROUTES_CHANGE = Script("""
local ops = {}
if ARGV[3] == '=' then
  redis.call('DEL', KEYS[1])
  for i = 4, #ARGV do redis.call('SADD', KEYS[1], ARGV[i]) end
  ops = false
else
  for i = 3, #ARGV do
    local f = string.sub(ARGV[i], 2)
    if string.sub(ARGV[i], 1, 1) == '+' then redis.call('SADD', KEYS[1], f)
    else redis.call('SREM', KEYS[1], f) end
    ops[#ops + 1] = ARGV[i]
  end
end
local v = redis.call('INCR', KEYS[2])
redis.call('PUBLISH', 'mq:rt', cmsgpack.pack({ARGV[1], v, ARGV[2], ops}))
return v
""")

# KEYS: routes set, its version. -> {version, filters}
ROUTES_LOAD = Script("""
return {tonumber(redis.call('GET', KEYS[2]) or '0'), redis.call('SMEMBERS', KEYS[1])}
""")

# KEYS: retained hash, its version. ARGV: topic, packed message ("" deletes).
RETAIN = Script("""
if ARGV[2] == '' then redis.call('HDEL', KEYS[1], ARGV[1])
else redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
local v = redis.call('INCR', KEYS[2])
redis.call('PUBLISH', 'mq:ret:ev', cmsgpack.pack({v, ARGV[1], ARGV[2]}))
return v
""")

# KEYS: retained hash, its version. -> {version, {topic, message, ...}}
RETAINED_LOAD = Script("""
return {tonumber(redis.call('GET', KEYS[2]) or '0'), redis.call('HGETALL', KEYS[1])}
""")

# KEYS: the client id's owner key. ARGV: the new claim "node|epoch|seq", the node key
# prefix. -> {the claim replaced ("" if none), 1 if its node is alive}
CLAIM = Script("""
local old = redis.call('GET', KEYS[1]) or ''
redis.call('SET', KEYS[1], ARGV[1])
if old == '' then return {'', 0} end
local node = string.match(old, '^([^|]*)')
return {old, redis.call('EXISTS', ARGV[2] .. '{' .. node .. '}')}
""")

# KEYS: the owner key. ARGV: the adopter's claim, the dead node. Set only while the dead node
# (or nobody) holds it: a client that reconnected elsewhere meanwhile keeps its claim. -> 1 if
# set.
ADOPT_CLAIM = Script("""
local current = redis.call('GET', KEYS[1])
if current and string.match(current, '^([^|]*)') ~= ARGV[2] then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
return 1
""")

# KEYS: the owner key. ARGV: the claim. Deleted only while it is still this claim.
RELEASE = Script("""
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
""")

# KEYS: the node's membership key, its "adopted" mark. ARGV: "epoch|", the value, its TTL in
# ms. 0 if another process registered this node id since (a newer epoch holds it); 2 if the
# key expired and another node adopted this one's sessions (it must join again).
HEARTBEAT = Script("""
local current = redis.call('GET', KEYS[1])
if current and string.sub(current, 1, #ARGV[1]) ~= ARGV[1] then return 0 end
if not current and redis.call('EXISTS', KEYS[2]) == 1 then return 2 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1
""")

ALL = (ROUTES_CHANGE, ROUTES_LOAD, RETAIN, RETAINED_LOAD, CLAIM, ADOPT_CLAIM, RELEASE,
       HEARTBEAT)
