package redis

import "github.com/redis/go-redis/v9"

// Every change of state is one Lua script, so that it happens whole or not at
// all and no other client sees it half done. docs/redis.md lists the keys.
//
// Conventions shared by every script:
//   - ARGV[1] is the key prefix with its hash tag, "{regwebhook}:". Keys named
//     after ids (a job's hash, a webhook's queue) are built from it inside the
//     script; the fixed keys a script touches come in KEYS. All share the
//     hash tag, so they live in one slot.
//   - Times come from the caller, never from Redis's TIME: hash fields keep
//     unix nanoseconds as decimal strings (exact), sorted-set scores are unix
//     microseconds (exact in a double). Only dedupe marks use Redis's clock,
//     through PEXPIREAT.
//   - A script checks everything it may refuse before it writes anything:
//     Redis does not roll back a script that fails halfway.

// lib is the prelude of every script: the prefix, the fixed keys (filled by
// each script from its KEYS), and the moves that several scripts share.
const lib = `
local P = ARGV[1]
local k = {}

-- us is the unix microseconds of unix nanoseconds, both decimal strings.
local function us(ns)
  if #ns <= 3 then return '0' end
  return string.sub(ns, 1, #ns - 3)
end

local function jobkey(id) return P .. 'job:' .. id end

-- A job's payload is a string of its own, written once: the job's hash
-- holds only short fields, so Redis keeps it compact (a listpack) and a
-- lease or an ack changes a few bytes, not a hash table with the payload.
local function plkey(id) return P .. 'pl:' .. id end

-- The fields of a job, in the order the scripts return them. The payload
-- is in plkey (a job of a store written before had it in its hash).
local jobFields = {'webhook', 'event', 'action', 'type', 'created', 'redelivery', 'attempts', 'due', 'payload'}

-- jobof returns a job's jobFields values, its payload included.
local function jobof(id, jk)
  local f = redis.call('HMGET', jk, unpack(jobFields))
  f[9] = redis.call('GET', plkey(id)) or f[9]
  return f
end

-- deljob removes a job's hash and payload.
local function deljob(id, jk)
  redis.call('DEL', jk, plkey(id))
end

-- queue indexes a job as queued: by due per webhook and overall, by
-- creation. While k.batch is set (a script that queues many jobs), the
-- overall indexes are added to once, by flush, for all of them.
local function queue(id, webhook, due, created)
  redis.call('ZADD', P .. 'q:' .. webhook, us(due), id)
  local b = k.batch
  if b then
    b.q[#b.q + 1], b.q[#b.q + 2] = us(due), id
    b.c[#b.c + 1], b.c[#b.c + 2] = us(created), id
    return
  end
  redis.call('ZADD', k.queued, us(due), id)
  redis.call('ZADD', k.created, us(created), id)
end

-- flush adds the jobs queued since k.batch was set to the overall indexes.
local function flush()
  local b = k.batch
  k.batch = nil
  if b and #b.q > 0 then
    redis.call('ZADD', k.queued, unpack(b.q))
    redis.call('ZADD', k.created, unpack(b.c))
  end
end

local function unqueue(id, webhook)
  redis.call('ZREM', P .. 'q:' .. webhook, id)
  redis.call('ZREM', k.queued, id)
  redis.call('ZREM', k.created, id)
end

-- addjob keeps a new job and queues it; the values are jobFields' (after id).
local function addjob(id, webhook, event, action, ctype, created, redelivery, attempts, due, payload)
  redis.call('HSET', jobkey(id), 'webhook', webhook, 'event', event, 'action', action, 'type', ctype,
    'created', created, 'redelivery', redelivery, 'attempts', attempts, 'due', due,
    'state', 'queued', 'token', '', 'until', '')
  redis.call('SET', plkey(id), payload)
  queue(id, webhook, due, created)
end

-- undead removes the dead letter id of webhook.
local function undead(id, webhook)
  redis.call('DEL', P .. 'dl:' .. id)
  redis.call('ZREM', P .. 'dead:' .. webhook, id)
  redis.call('SREM', k.deadall, id)
end

-- requeue makes a leased job queued again, its lease gone.
local function requeue(id, jk, webhook, due, created)
  redis.call('HSET', jk, 'state', 'queued', 'token', '', 'until', '')
  redis.call('ZREM', k.leased, id)
  queue(id, webhook, due, created)
end

-- record adds a history entry to a webhook's, newest first, and keeps
-- limit: it cuts the list back to limit once it holds 16 more, not after
-- every entry (History reads the newest limit only).
local function record(webhook, entry, limit)
  local h = P .. 'history:' .. webhook
  if redis.call('LPUSH', h, entry) > limit + 16 then
    redis.call('LTRIM', h, 0, limit - 1)
  end
end

-- bury turns the job id (no longer indexed as queued or leased) into a dead
-- letter of its webhook, replacing an older dead letter of the same delivery,
-- and drops that webhook's oldest dead letters beyond limit.
local function bury(id, err, died, limit)
  local jk = jobkey(id)
  local j = jobof(id, jk)
  local webhook = j[1]
  local dl = P .. 'dl:' .. id
  local old = redis.call('HGET', dl, 'webhook')
  if old then redis.call('ZREM', P .. 'dead:' .. old, id) end
  redis.call('DEL', dl)
  local fields = {}
  for i, f in ipairs(jobFields) do
    fields[#fields + 1] = f
    fields[#fields + 1] = j[i]
  end
  redis.call('HSET', dl, 'error', err, 'died', died, unpack(fields))
  local dz = P .. 'dead:' .. webhook
  redis.call('ZADD', dz, redis.call('INCR', k.seq), id)
  redis.call('SADD', k.deadall, id)
  deljob(id, jk)
  local extra = redis.call('ZCARD', dz) - limit
  if extra > 0 then
    for _, gone in ipairs(redis.call('ZRANGE', dz, 0, extra - 1)) do
      redis.call('DEL', P .. 'dl:' .. gone)
      redis.call('SREM', k.deadall, gone)
    end
    redis.call('ZREMRANGEBYRANK', dz, 0, extra - 1)
  end
end

-- read answers one question about the index or the dedupe marks, as a
-- string that Go decodes and that commitScript compares:
--   S id:          '1' when the event id is marked seen, else '0'
--   T repo tag:    '' when unknown, else '+' .. digest .. '\n' .. mediaType
--   M repo digest: '' when unknown, else '+' .. #tags .. '\n' .. each tag
--                  (sorted) .. '\n' .. mediaType
local function read(kind, a, b)
  if kind == 'S' then
    return tostring(redis.call('EXISTS', P .. 'seen:' .. a))
  elseif kind == 'T' then
    local v = redis.call('HGET', P .. 'tags:' .. a, b)
    if v then return '+' .. v end
    return ''
  elseif kind == 'M' then
    local mt = redis.call('HGET', P .. 'manifests:' .. a, b)
    if not mt then return '' end
    local tags = redis.call('SMEMBERS', P .. 'tagsof:' .. a .. '@' .. b)
    table.sort(tags)
    local out = '+' .. #tags .. '\n'
    for _, t in ipairs(tags) do out = out .. t .. '\n' end
    return out .. mt
  end
  return redis.error_reply('unknown read ' .. tostring(kind))
end
`

// readScript answers one read of an Ingest transaction (see read in lib).
//
// KEYS: none.
// ARGV: [1] prefix, [2] kind (S, T or M), [3] a, [4] b.
// Returns: the answer string.
var readScript = redis.NewScript(lib + `
return read(ARGV[2], ARGV[3], ARGV[4])
`)

// commitScript commits an Ingest transaction: it re-reads what the
// transaction read and, if every answer is still the same, applies its writes
// in order. Otherwise it changes nothing.
//
// KEYS: [1] queued, [2] created.
// ARGV: [1] prefix, [2] number of reads R, then R reads of 4 values each
// (kind, a, b, the answer the transaction got), then the writes, each an op
// name and its values:
//
//	seen   id untilMs                 mark an event id seen until untilMs (PEXPIREAT)
//	job    id webhook event action type created redelivery attempts due payload
//	                                  queue a job, unless a job with its id exists
//	put    repo digest mediaType tag  record a manifest; a tag (empty: none) points at it
//	deltag repo tag                   forget a tag
//	delman repo digest                forget a manifest (its tags stay)
//
// Returns: 1 committed, 0 a read changed (nothing written).
var commitScript = redis.NewScript(lib + `
k.queued, k.created = KEYS[1], KEYS[2]
local i = 3
for _ = 1, tonumber(ARGV[2]) do
  if read(ARGV[i], ARGV[i + 1], ARGV[i + 2]) ~= ARGV[i + 3] then return 0 end
  i = i + 4
end
local width = {seen = 3, job = 11, put = 5, deltag = 3, delman = 3}
k.batch = {q = {}, c = {}}
local w = i
while w <= #ARGV do
  local n = width[ARGV[w]]
  if not n or w + n - 1 > #ARGV then return redis.error_reply('bad write at ARGV ' .. w) end
  w = w + n
end
while i <= #ARGV do
  local op = ARGV[i]
  if op == 'seen' then
    local sk = P .. 'seen:' .. ARGV[i + 1]
    redis.call('SET', sk, '1')
    redis.call('PEXPIREAT', sk, ARGV[i + 2])
  elseif op == 'job' then
    if redis.call('EXISTS', jobkey(ARGV[i + 1])) == 0 then
      addjob(unpack(ARGV, i + 1, i + 10))
    end
  elseif op == 'put' then
    local repo, digest, mt, tag = ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
    redis.call('HSET', P .. 'manifests:' .. repo, digest, mt)
    if tag ~= '' then
      local old = redis.call('HGET', P .. 'tags:' .. repo, tag)
      if old then redis.call('SREM', P .. 'tagsof:' .. repo .. '@' .. string.match(old, '^[^\n]*'), tag) end
      redis.call('HSET', P .. 'tags:' .. repo, tag, digest .. '\n' .. mt)
      redis.call('SADD', P .. 'tagsof:' .. repo .. '@' .. digest, tag)
    end
  elseif op == 'deltag' then
    local repo, tag = ARGV[i + 1], ARGV[i + 2]
    local old = redis.call('HGET', P .. 'tags:' .. repo, tag)
    if old then
      redis.call('SREM', P .. 'tagsof:' .. repo .. '@' .. string.match(old, '^[^\n]*'), tag)
      redis.call('HDEL', P .. 'tags:' .. repo, tag)
    end
  elseif op == 'delman' then
    redis.call('HDEL', P .. 'manifests:' .. ARGV[i + 1], ARGV[i + 2])
  end
  i = i + width[op]
end
flush()
return 1
`)

// leaseScript leases, for each webhook asked, up to its count of due queued
// jobs, oldest due first (then by id), and finds when its earliest job still
// queued is due (to the microsecond, as due times are compared).
//
// KEYS: [1] queued, [2] leased, [3] created.
// ARGV: [1] prefix, [2] now (µs), [3] lease until (ns), [4] token base, then
// pairs of webhook id and count.
// Returns: one array per webhook: {webhook id, due (ns, a whole number of
// µs) of its earliest queued job or empty, then per job leased {id, token, the jobFields values}}.
// Job tokens are the base and a counter: new for every lease.
var leaseScript = redis.NewScript(lib + `
k.queued, k.leased, k.created = KEYS[1], KEYS[2], KEYS[3]
local nowUs, untilNs, base = tonumber(ARGV[2]), ARGV[3], ARGV[4]
local out, n = {}, 0
-- The overall indexes change once for all the jobs leased.
local ids, leases = {}, {}
for i = 5, #ARGV, 2 do
  local webhook, want = ARGV[i], tonumber(ARGV[i + 1])
  local qk = P .. 'q:' .. webhook
  local res = {webhook, ''}
  -- The first want + 1 queued jobs, by due: those due are leased (up to
  -- want), the first one left tells when the next is due.
  local first = redis.call('ZRANGE', qk, 0, want, 'WITHSCORES')
  local due = {}
  for j = 1, #first, 2 do
    if #due < want and tonumber(first[j + 1]) <= nowUs then
      due[#due + 1] = first[j]
    else
      res[2] = first[j + 1] .. '000' -- µs to ns
      break
    end
  end
  if #due > 0 then
    for _, id in ipairs(due) do
      n = n + 1
      local token = base .. '.' .. n
      local jk = jobkey(id)
      local f = jobof(id, jk)
      f[7] = tostring(tonumber(f[7]) + 1) -- attempts, counting this one
      redis.call('HSET', jk, 'attempts', f[7], 'state', 'leased', 'token', token, 'until', untilNs)
      ids[#ids + 1] = id
      leases[#leases + 1], leases[#leases + 2] = us(untilNs), id
      local job = {id, token}
      for _, v in ipairs(f) do job[#job + 1] = v end
      res[#res + 1] = job
    end
    -- They are the webhook's first by rank.
    redis.call('ZREMRANGEBYRANK', qk, 0, #due - 1)
  end
  out[#out + 1] = res
end
if #ids > 0 then
  redis.call('ZREM', k.queued, unpack(ids))
  redis.call('ZREM', k.created, unpack(ids))
  redis.call('ZADD', k.leased, unpack(leases))
end
return out
`)

// ackScript finishes delivered jobs and records their attempts: one or
// more jobs, each on its own (the acks of workers that finished at once,
// see Ack).
//
// KEYS: [1] leased.
// ARGV: [1] prefix, [2] history limit, then per job: job id, lease token,
// history entry (JSON).
// Returns: per job, in order, 1 done or 0 the lease is no longer held (that
// job unchanged).
var ackScript = redis.NewScript(lib + `
k.leased = KEYS[1]
local limit = tonumber(ARGV[2])
local out, done = {}, {}
for i = 3, #ARGV, 3 do
  local id, token = ARGV[i], ARGV[i + 1]
  local jk = jobkey(id)
  local j = redis.call('HMGET', jk, 'token', 'webhook')
  if token == '' or j[1] ~= token then
    out[#out + 1] = 0
  else
    deljob(id, jk)
    done[#done + 1] = id
    record(j[2], ARGV[i + 2], limit)
    out[#out + 1] = 1
  end
end
if #done > 0 then redis.call('ZREM', k.leased, unpack(done)) end
return out
`)

// failScript records a failed attempt and queues the job again at a new due
// time or makes it a dead letter. Go decides which, with
// store.Failure.Exhausted on the attempts and creation time of the lease;
// the script checks that the job still has those.
//
// KEYS: [1] queued, [2] leased, [3] created, [4] deadall, [5] seq.
// ARGV: [1] prefix, [2] job id, [3] lease token, [4] attempts, [5] created
// (ns), [6] '1' dead or '0' retry, [7] due (ns), [8] error, [9] died (ns),
// [10] history entry (JSON), [11] history limit, [12] dead letter limit.
// Returns: 1 queued again, 2 dead, 0 the lease is no longer held, -1 the
// lease's attempts or creation time are not the job's (nothing changed).
var failScript = redis.NewScript(lib + `
k.queued, k.leased, k.created, k.deadall, k.seq = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local id = ARGV[2]
local jk = jobkey(id)
local j = redis.call('HMGET', jk, 'token', 'attempts', 'created', 'webhook')
if ARGV[3] == '' or j[1] ~= ARGV[3] then return 0 end
if j[2] ~= ARGV[4] or j[3] ~= ARGV[5] then return -1 end
local ret = 1
if ARGV[6] == '1' then
  redis.call('ZREM', k.leased, id)
  bury(id, ARGV[8], ARGV[9], tonumber(ARGV[12]))
  ret = 2
else
  redis.call('HSET', jk, 'due', ARGV[7])
  requeue(id, jk, j[4], ARGV[7], j[3])
end
record(j[4], ARGV[10], tonumber(ARGV[11]))
return ret
`)

// releaseScript puts a leased job back in the queue untried: due as it was,
// its attempt not counted.
//
// KEYS: [1] queued, [2] leased, [3] created.
// ARGV: [1] prefix, [2] job id, [3] lease token.
// Returns: 1 done, 0 the lease is no longer held.
var releaseScript = redis.NewScript(lib + `
k.queued, k.leased, k.created = KEYS[1], KEYS[2], KEYS[3]
local id = ARGV[2]
local jk = jobkey(id)
local j = redis.call('HMGET', jk, 'token', 'attempts', 'webhook', 'due', 'created')
if ARGV[3] == '' or j[1] ~= ARGV[3] then return 0 end
redis.call('HSET', jk, 'attempts', math.max(tonumber(j[2]) - 1, 0))
requeue(id, jk, j[3], j[4], j[5])
return 1
`)

// maintainScript puts jobs whose lease ended at or before now back in the
// queue, then makes dead letters of queued jobs made before the cutoff,
// oldest made first, at most batch of each.
//
// KEYS: [1] queued, [2] leased, [3] created, [4] deadall, [5] seq.
// ARGV: [1] prefix, [2] now (µs), [3] cutoff (µs; empty for none), [4] error
// of the expired, [5] died (ns), [6] dead letter limit, [7] batch.
// Returns: {reclaimed, expired}.
var maintainScript = redis.NewScript(lib + `
k.queued, k.leased, k.created, k.deadall, k.seq = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local batch = tonumber(ARGV[7])
local reclaimed, expired = 0, 0
for _, id in ipairs(redis.call('ZRANGEBYSCORE', k.leased, '-inf', ARGV[2], 'LIMIT', 0, batch)) do
  local jk = jobkey(id)
  local j = redis.call('HMGET', jk, 'webhook', 'due', 'created')
  if j[1] then
    requeue(id, jk, j[1], j[2], j[3])
    reclaimed = reclaimed + 1
  else
    redis.call('ZREM', k.leased, id)
  end
end
if ARGV[3] ~= '' then
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', k.created, '-inf', '(' .. ARGV[3], 'LIMIT', 0, batch)) do
    local webhook = redis.call('HGET', jobkey(id), 'webhook')
    if webhook then
      unqueue(id, webhook)
      bury(id, ARGV[4], ARGV[5], tonumber(ARGV[6]))
      expired = expired + 1
    else
      redis.call('ZREM', k.created, id)
    end
  end
end
return {reclaimed, expired}
`)

// depthScript counts jobs by state at now.
//
// KEYS: [1] queued, [2] leased, [3] deadall.
// ARGV: [1] prefix, [2] now (µs).
// Returns: {ready, delayed, leased, dead}.
var depthScript = redis.NewScript(lib + `
return {redis.call('ZCOUNT', KEYS[1], '-inf', ARGV[2]), redis.call('ZCOUNT', KEYS[1], '(' .. ARGV[2], '+inf'),
  redis.call('ZCARD', KEYS[2]), redis.call('SCARD', KEYS[3])}
`)

// recordScript adds an entry to a webhook's history (a ping's).
//
// KEYS: none.
// ARGV: [1] prefix, [2] webhook id, [3] entry (JSON), [4] history limit.
// Returns: 1.
var recordScript = redis.NewScript(lib + `
record(ARGV[2], ARGV[3], tonumber(ARGV[4]))
return 1
`)

// deadLettersScript reads a webhook's dead letters, the last to die first.
//
// KEYS: none.
// ARGV: [1] prefix, [2] webhook id.
// Returns: per dead letter {id, error, died, the jobFields values}.
var deadLettersScript = redis.NewScript(lib + `
local out = {}
for _, id in ipairs(redis.call('ZREVRANGE', P .. 'dead:' .. ARGV[2], 0, -1)) do
  local d = {id}
  for _, v in ipairs(redis.call('HMGET', P .. 'dl:' .. id, 'error', 'died', unpack(jobFields))) do d[#d + 1] = v end
  out[#out + 1] = d
end
return out
`)

// createWebhookScript keeps a new webhook.
//
// KEYS: [1] webhooks, [2] names, [3] webhooks:version.
// ARGV: [1] prefix, [2] id, [3] name, [4] record (JSON), [5] new version.
// Returns: 'ok', or 'name' / 'id' when taken (nothing changed).
var createWebhookScript = redis.NewScript(lib + `
if redis.call('HEXISTS', KEYS[2], ARGV[3]) == 1 then return 'name' end
if redis.call('HEXISTS', KEYS[1], ARGV[2]) == 1 then return 'id' end
redis.call('HSET', KEYS[1], ARGV[2], ARGV[4])
redis.call('HSET', KEYS[2], ARGV[3], ARGV[2])
redis.call('SET', KEYS[3], ARGV[5])
return 'ok'
`)

// updateWebhookScript replaces a webhook's record, maybe under a new name.
//
// KEYS: [1] webhooks, [2] names, [3] webhooks:version.
// ARGV: [1] prefix, [2] id, [3] name, [4] record (JSON), [5] new version.
// Returns: 'ok', 'missing' (no webhook with the id) or 'name' (another has
// the name); nothing changed unless 'ok'.
var updateWebhookScript = redis.NewScript(lib + `
local old = redis.call('HGET', KEYS[1], ARGV[2])
if not old then return 'missing' end
local other = redis.call('HGET', KEYS[2], ARGV[3])
if other and other ~= ARGV[2] then return 'name' end
redis.call('HDEL', KEYS[2], cjson.decode(old).name)
redis.call('HSET', KEYS[2], ARGV[3], ARGV[2])
redis.call('HSET', KEYS[1], ARGV[2], ARGV[4])
redis.call('SET', KEYS[3], ARGV[5])
return 'ok'
`)

// deleteWebhookScript removes a webhook with its queued and leased jobs, dead
// letters and history.
//
// KEYS: [1] webhooks, [2] names, [3] webhooks:version, [4] queued,
// [5] leased, [6] created, [7] deadall.
// ARGV: [1] prefix, [2] id, [3] new version.
// Returns: 1 done, 0 no webhook with the id.
var deleteWebhookScript = redis.NewScript(lib + `
k.queued, k.leased, k.created, k.deadall = KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local id = ARGV[2]
local old = redis.call('HGET', KEYS[1], id)
if not old then return 0 end
redis.call('HDEL', KEYS[2], cjson.decode(old).name)
redis.call('HDEL', KEYS[1], id)
redis.call('SET', KEYS[3], ARGV[3])
local qk = P .. 'q:' .. id
for _, j in ipairs(redis.call('ZRANGE', qk, 0, -1)) do
  deljob(j, jobkey(j))
  redis.call('ZREM', k.queued, j)
  redis.call('ZREM', k.created, j)
end
redis.call('DEL', qk)
for _, j in ipairs(redis.call('ZRANGE', k.leased, 0, -1)) do
  if redis.call('HGET', jobkey(j), 'webhook') == id then
    deljob(j, jobkey(j))
    redis.call('ZREM', k.leased, j)
  end
end
local dz = P .. 'dead:' .. id
for _, d in ipairs(redis.call('ZRANGE', dz, 0, -1)) do
  redis.call('DEL', P .. 'dl:' .. d)
  redis.call('SREM', k.deadall, d)
end
redis.call('DEL', dz, P .. 'history:' .. id)
return 1
`)

// announceScript records this process's hash of its config-file webhooks,
// forgets processes not heard from since a cutoff, and returns every hash.
//
// KEYS: [1] replicas, [2] replicas:config.
// ARGV: [1] prefix, [2] process id, [3] hash, [4] now (ms), [5] cutoff (ms).
// Returns: flat {process id, hash, ...}.
var announceScript = redis.NewScript(lib + `
redis.call('ZADD', KEYS[1], ARGV[4], ARGV[2])
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
for _, gone in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[5])) do
  redis.call('ZREM', KEYS[1], gone)
  redis.call('HDEL', KEYS[2], gone)
end
return redis.call('HGETALL', KEYS[2])
`)
