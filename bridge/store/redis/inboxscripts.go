package redis

// The scripts of the inbox (inbox.go; docs/redis.md, "Inbox"). An entry's
// bytes enter Lua in the commit that pushes it (commitScript) and in
// reclaimScript, which runs when a process died; a take moves entries
// with plain LMOVEs.

// takeScript takes the counts of up to n entries off the head of inboxn
// for proc, which moves as many entries from inbox to its list with plain
// LMOVEs in the same transaction: the jobs leave inboxjobs for proc's
// buffered count, and proc's holders score rises to until. Those of
// deleted webhooks that left inboxjobs already (gonen, see
// deleteWebhookScript) leave it once only.
//
// ARGV: [1] prefix, [2] proc, [3] n, [4] until (µs).
// Returns: the counts taken, in order.
var takeScript = newScript("take", `
local counts = redis.call('LPOP', P .. 'inboxn', ARGV[3])
if not counts then return {} end
local total, counted = 0, 0
local gonen = redis.call('HGETALL', P .. 'gonen')
local gone = {}
for i = 1, #gonen, 2 do gone[gonen[i]] = tonumber(gonen[i + 1]) end
for _, c in ipairs(counts) do
  total = total + countsTotal(c)
  if #gonen > 0 then
    local f = countsOf(c)
    for i = 1, #f, 2 do
      local left = gone[f[i]]
      if left and left > 0 then
        local n = math.min(left, tonumber(f[i + 1]))
        gone[f[i]] = left - n
        counted = counted + n
      end
    end
  end
end
for i = 1, #gonen, 2 do
  local w = gonen[i]
  if gone[w] <= 0 then
    redis.call('HDEL', P .. 'gonen', w)
  elseif gone[w] ~= tonumber(gonen[i + 1]) then
    redis.call('HSET', P .. 'gonen', w, gone[w])
  end
end
redis.call('DECRBY', P .. 'inboxjobs', total - counted)
redis.call('HINCRBY', P .. 'hcount', ARGV[2] .. ':b', total)
redis.call('ZADD', P .. 'holders', 'GT', ARGV[4], ARGV[2])
return counts
`)

// inackScript finishes delivered jobs of proc's entries, whose history
// entries the same transaction pushed just before (see ackScript): when
// proc no longer holds its list (another process took it back), it takes
// the entries back and changes nothing else.
//
// ARGV: [1] prefix, [2] proc, [3] 'i' or 'v' (as ackScript's), then per job:
// id, webhook, its entry's index or the entry.
// Returns: per job, 1 done or 0 lost.
var inackScript = newScript("inack", `
local proc, byIndex = ARGV[2], ARGV[3] == 'i'
local held = redis.call('ZSCORE', P .. 'holders', proc)
local out, ids, marked = {}, {}, {}
for i = 4, #ARGV, 3 do
  if held then
    out[#out + 1] = 1
    ids[#ids + 1] = ARGV[i]
  else
    out[#out + 1] = 0
    takeback(P .. 'history:' .. ARGV[i + 1], ARGV[i + 2], byIndex, marked)
  end
end
unmark(marked)
-- Counted by the members removed, so that a transaction run twice counts
-- once.
if #ids > 0 then
  local n = many('SREM', ijset(), ids)
  if n > 0 then redis.call('HINCRBY', P .. 'hcount', proc .. ':l', -n) end
end
return out
`)

// inholdScript moves one job out of proc's entries, if proc still holds
// it, counting it out of proc's buffered ('b') or leased ('l') jobs:
//
//	hold     an ordinary leased job of the queue (its string, its lease
//	         token until until), for Fail and Release
//	requeue  an ordinary queued job (its string with the attempts it has now)
//	bury     a dead letter (its string; error, died, the dead letter limit)
//	drop     gone: its webhook was deleted
//
// KEYS: [1] queued, [2] created, [3] leased, [4] leases, [5] deadall, [6] seq.
// ARGV: [1] prefix, [2] proc, [3] mode, [4] 'b' or 'l', [5] id, [6] job
// string, [7] token, [8] until (µs), [9] error, [10] died (ns), [11] dead
// letter limit.
// Returns: 1 done, 0 proc no longer holds it.
var inholdScript = newScript("inhold", `
k.queued, k.created, k.leased, k.leases, k.deadall, k.seq = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local proc, mode, id = ARGV[2], ARGV[3], ARGV[5]
if not redis.call('ZSCORE', P .. 'holders', proc) or redis.call('SREM', ijset(), id) == 0 then return 0 end
redis.call('HINCRBY', P .. 'hcount', proc .. ':' .. ARGV[4], -1)
if mode == 'drop' then return 1 end
if mode == 'bury' then
  bury(id, decode(ARGV[6]), ARGV[9], ARGV[10], tonumber(ARGV[11]))
  return 1
end
redis.call('SET', jkey(id), ARGV[6])
if mode == 'hold' then
  hold({id, ARGV[7]})
  redis.call('ZADD', k.leased, ARGV[8], id)
else
  local f = decode(ARGV[6])
  queue(id, f[1], f[8], f[5])
end
return 1
`)

// reclaimScript puts the jobs of a process's list that are still there
// (members of ij) back at the head of the inbox, in their order, and
// forgets the process: ARGV[2]'s (a process that closes), or else every
// process but ARGV[4] whose holders score is before now (one that died),
// at most batch of them.
//
// ARGV: [1] prefix, [2] proc or empty, [3] now (µs), [4] this process,
// [5] batch.
// Returns: the jobs put back.
var reclaimScript = newScript("reclaim", `
local procs = {ARGV[2]}
if ARGV[2] == '' then
  procs = redis.call('ZRANGEBYSCORE', P .. 'holders', '-inf', '(' .. ARGV[3], 'LIMIT', 0, ARGV[5])
end
local moved = 0
for _, p in ipairs(procs) do
  if p ~= ARGV[4] or ARGV[2] ~= '' then
    local list = P .. 'held:' .. p
    local entries = redis.call('LRANGE', list, 0, -1)
    for e = #entries, 1, -1 do
      local raw = entries[e]
      if string.sub(raw, 1, 1) == 'H' then raw = string.sub(raw, 2) end -- handed off
      -- A shared payload ('P', its netstring) stays at the head of what
      -- is kept: each job's string left it out.
      local head, pos = '', 1
      if string.sub(raw, 1, 1) == 'P' then
        local c = string.find(raw, ':', 2, true)
        pos = c + tonumber(string.sub(raw, 2, c - 1)) + 1
        head = string.sub(raw, 1, pos - 1)
      end
      local f, keep, order, byhook = netstrings(raw, pos), {}, {}, {}
      for j = 1, #f, 3 do
        if redis.call('SISMEMBER', ijset(), f[j]) == 1 then
          keep[#keep + 1], keep[#keep + 2], keep[#keep + 3] = f[j], f[j + 1], f[j + 2]
          local w = f[j + 1]
          if not byhook[w] then
            byhook[w] = 0
            order[#order + 1] = w
          end
          byhook[w] = byhook[w] + 1
        end
      end
      if #keep > 0 then
        local counts = {}
        for _, w in ipairs(order) do counts[#counts + 1], counts[#counts + 2] = w, tostring(byhook[w]) end
        local n = #keep / 3
        redis.call('LPUSH', P .. 'inbox', head .. netstring(keep))
        redis.call('LPUSH', P .. 'inboxn', n .. '|' .. netstring(counts))
        redis.call('INCRBY', P .. 'inboxjobs', n)
        moved = moved + n
      end
    end
    redis.call('DEL', list)
    redis.call('HDEL', P .. 'hcount', p .. ':b', p .. ':l')
    redis.call('ZREM', P .. 'holders', p)
  end
end
return moved
`)
