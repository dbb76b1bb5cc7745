"""The Lua scripts of the Redis store: each decision is one atomic script on Redis's clock.

Every script reads ``TIME`` on the server, so no client clock ever decides, and nothing absolute
from a client clock is stored. Every key a script touches shares the rule's hash tag (``{name}``),
so the scripts also run on Redis Cluster. Numbers that do not fit Lua's 14-digit default format
(microsecond times) are written with ``%.0f``.
"""

from __future__ import annotations

from typing import Final

__all__ = ["BREAKER_SYNC", "THROTTLE_ADMIT"]

BREAKER_SYNC: Final = """
-- KEYS: 1 state hash, 2 window hash (counts per bucket), 3 trial lease
-- ARGV: 1 op (sync|reopen|close|reset|force), 2 successes, 3 failures, 4 failure_threshold,
--       5 failure_ratio, 6 window_ms, 7 bucket_ms, 8 timeout_ms, 9 lease action
--       (''|acquire|renew|release), 10 holder id, 11 lease_ms, 12 channel, 13 keep_ms
-- Returns {state, epoch, generation, remaining_ms, lease holder or '', cause, granted 0|1}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local op, holder = ARGV[1], ARGV[10]
local timeout_ms = tonumber(ARGV[8])
local st = redis.call('HMGET', KEYS[1], 'state', 'opened', 'epoch', 'gen', 'cause')
local state = st[1] or 'closed'
local opened = tonumber(st[2]) or 0
local epoch = tonumber(st[3]) or 0
local gen = st[4]
local cause = st[5] or ''
local changed, decided = false, false
if not gen then
  -- A new life of this state: named by the server's time, so a restart is told from a decision.
  gen = t[1] .. '.' .. t[2]
  changed = true
end
local lease = redis.call('GET', KEYS[3])
local function decide(new_state, new_cause)
  state, cause, epoch = new_state, new_cause, epoch + 1
  if new_state == 'open' then opened = now end
  changed, decided, lease = true, true, false
  redis.call('DEL', KEYS[2], KEYS[3])
end
if op == 'reset' then
  decide('closed', 'reset')
elseif op == 'force' then
  decide('forced', 'force')
elseif (op == 'close' or op == 'reopen') and state == 'open' then
  -- Only the lease holder's trials decide (or anyone's, once no lease is held).
  if (not lease) or lease == holder then
    if op == 'close' then decide('closed', 'close') else decide('open', 'reopen') end
  end
end
local s, f = tonumber(ARGV[2]), tonumber(ARGV[3])
if s + f > 0 then
  local window_ms, bucket_ms = tonumber(ARGV[6]), tonumber(ARGV[7])
  local b = string.format('%.0f', math.floor(now / bucket_ms))
  if s > 0 then redis.call('HINCRBY', KEYS[2], b .. ':s', s) end
  if f > 0 then redis.call('HINCRBY', KEYS[2], b .. ':f', f) end
  redis.call('PEXPIRE', KEYS[2], window_ms + bucket_ms)
  if state == 'closed' and f > 0 then
    local oldest = math.floor((now - window_ms) / bucket_ms)
    local fs, ss = 0, 0
    local all = redis.call('HGETALL', KEYS[2])
    for i = 1, #all, 2 do
      local field = all[i]
      local sep = string.find(field, ':', 1, true)
      local kb = tonumber(string.sub(field, 1, sep - 1))
      if kb <= oldest then
        redis.call('HDEL', KEYS[2], field)
      elseif string.sub(field, sep + 1) == 'f' then
        fs = fs + tonumber(all[i + 1])
      else
        ss = ss + tonumber(all[i + 1])
      end
    end
    if fs >= tonumber(ARGV[4]) and fs >= tonumber(ARGV[5]) * (fs + ss) then
      decide('open', 'open')
    end
  end
end
local granted = 0
local action = ARGV[9]
if state == 'open' and action ~= '' then
  local lease_ms = tonumber(ARGV[11])
  if action == 'acquire' then
    if now >= opened + timeout_ms and redis.call('SET', KEYS[3], holder, 'NX', 'PX', lease_ms) then
      lease, granted = holder, 1
    end
  elseif action == 'renew' and lease == holder then
    redis.call('PEXPIRE', KEYS[3], lease_ms)
  elseif action == 'release' and lease == holder then
    redis.call('DEL', KEYS[3])
    lease = false
  end
end
if changed then
  redis.call('HSET', KEYS[1], 'state', state, 'opened', string.format('%.0f', opened),
    'epoch', epoch, 'gen', gen, 'cause', cause)
end
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[13]))
local remaining = 0
if state == 'open' then remaining = math.max(0, opened + timeout_ms - now) end
local holder_now = lease or ''
if decided then
  local shown_holder = holder_now
  if shown_holder == '' then shown_holder = '-' end
  redis.call('PUBLISH', ARGV[12], table.concat({state, tostring(epoch), gen,
    string.format('%.0f', remaining), shown_holder, cause}, ' '))
end
return {state, epoch, gen, remaining, holder_now, cause, granted}
"""

THROTTLE_ADMIT: Final = """
-- KEYS: 1 the sliding log (sorted set: member -> admission time in microseconds)
-- ARGV: 1 period_us (the window, margin included), 2 max_calls, 3 mode (wait|raise), 4 member
-- Returns {admitted 0|1, microseconds from now until the admission (or until it would be)}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local period, max = tonumber(ARGV[1]), tonumber(ARGV[2])
-- The window is half-open: an admission exactly `period` ago is out of it.
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%.0f', now - period))
local n = redis.call('ZCARD', KEYS[1])
local at = now
if n >= max then
  local last = tonumber(redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')[2])
  local kth = tonumber(redis.call('ZRANGE', KEYS[1], n - max, n - max, 'WITHSCORES')[2])
  at = math.max(now, last, kth + period)
end
if at > now and ARGV[3] == 'raise' then
  return {0, at - now}
end
redis.call('ZADD', KEYS[1], string.format('%.0f', at), ARGV[4])
redis.call('PEXPIRE', KEYS[1], math.ceil((at - now + period) / 1000) + 1000)
return {1, at - now}
"""
