package redis

// Every change of state is one Lua script, so that it happens whole or not at
// all and no other client sees it half done; the scripts are the functions
// of one Redis function library (functions.go). docs/redis.md lists the
// keys.
//
// Conventions shared by every script:
//   - ARGV[1] is the key prefix with its hash tag, "{regwebhook}:". Keys named
//     after ids (a job, a webhook's queue) are built from it inside the
//     script; the fixed keys a script touches come in KEYS. All share the
//     hash tag, so they live in one slot.
//   - Times come from the caller, never from Redis's TIME: hash fields and
//     jobs keep unix nanoseconds as decimal strings (exact), sorted-set
//     scores are unix microseconds (exact in a double). Only dedupe marks
//     use Redis's clock, through SET's PXAT.
//   - A script checks everything it may refuse before it writes anything:
//     Redis does not roll back a script that fails halfway.

// lib is the head of the function library (see library): the prefix and
// the fixed keys of the call running (each function sets P to its ARGV[1],
// and k to a new table that the script fills from its KEYS), and the moves
// that several scripts share. It runs when Redis loads the library, where
// Lua's libraries (string, table, …) cannot be reached: at its top level,
// only literals.
const lib = `
local P, k

-- us is the unix microseconds of unix nanoseconds, both decimal strings.
local function us(ns)
  if #ns <= 3 then return '0' end
  return string.sub(ns, 1, #ns - 3)
end

-- A job is one string, j:<id>: its short fields, each as its length, ':'
-- and its bytes (netstring-like, so that any byte may be in them), then its
-- payload (see encodeJob in Go). It is written once, when the job is made,
-- and read whole by one MGET for all the jobs of a lease; only a failed
-- attempt or a lease run out writes it again. A job of an earlier version
-- is a hash, job:<id>, with its payload in pl:<id> (or in the hash).
local function jkey(id) return P .. 'j:' .. id end
local function jobkey(id) return P .. 'job:' .. id end

-- many runs cmd on key (nil: none) with the values of list after it, in
-- chunks of 1,000 (an even number: pairs stay together), as Lua's unpack
-- takes some 8,000 values at most and one commit may queue more jobs. It
-- returns the sum of the replies that are numbers (EXISTS), and the values
-- of the replies that are arrays, in order (MGET).
local function many(cmd, key, list)
  local sum, all = 0, {}
  for i = 1, #list, 1000 do
    local r
    if key then
      r = redis.call(cmd, key, unpack(list, i, math.min(i + 999, #list)))
    else
      r = redis.call(cmd, unpack(list, i, math.min(i + 999, #list)))
    end
    if type(r) == 'number' then
      sum = sum + r
    elseif type(r) == 'table' then
      for _, v in ipairs(r) do all[#all + 1] = v end
    end
  end
  return sum, all
end

-- A job of an inbox entry (docs/redis.md, "Inbox") is a member of the
-- set ij while the entry holds it: its string is in the entry. (A set's
-- member costs Redis less than a key of its own.)
local function ijset() return P .. 'ij' end

-- jobexists reports whether a job id is queued, leased or in an entry.
local function jobexists(id)
  return redis.call('EXISTS', jkey(id), jobkey(id)) > 0 or redis.call('SISMEMBER', ijset(), id) == 1
end

-- netstrings reads s, fields each written as its length, ':' and its
-- bytes, from pos (default 1), into a list: an inbox entry (id, webhook,
-- job string per job) or its counts' pairs (webhook, number of jobs).
local function netstrings(s, pos)
  local out = {}
  pos = pos or 1
  while pos <= #s do
    local c = string.find(s, ':', pos, true)
    local n = tonumber(string.sub(s, pos, c - 1))
    out[#out + 1] = string.sub(s, c + 1, c + n)
    pos = c + n + 1
  end
  return out
end

-- netstring is netstrings' inverse.
local function netstring(list)
  local out = {}
  for i, v in ipairs(list) do out[i] = #v .. ':' .. v end
  return table.concat(out)
end

-- An entry's counts, the element of inboxn at its place, are the number
-- of its jobs, '|', then per webhook its id and its number of jobs (as
-- netstrings): the inbox's count of jobs (inboxjobs) needs only the first,
-- a webhook deleted reads the rest.

-- countsTotal returns the number of jobs of an entry's counts.
local function countsTotal(c)
  return tonumber(string.sub(c, 1, string.find(c, '|', 1, true) - 1))
end

-- countsOf returns an entry's counts by webhook: id, number, id, number….
local function countsOf(c)
  return netstrings(c, string.find(c, '|', 1, true) + 1)
end

-- takeback removes from history h an entry that an ack's transaction
-- pushed and whose ack failed: at is its index (byIndex: pushed by the
-- same transaction; '' not pushed) or the entry itself. Entries marked
-- ('') are removed by unmark, once all are marked: removing one at once
-- would move the indexes still to come.
local function takeback(h, at, byIndex, marked)
  if not byIndex then
    redis.call('LREM', h, 1, at)
  elseif at ~= '' then
    redis.call('LSET', h, at, '') -- an entry is JSON, never ''
    marked[h] = true
  end
end

local function unmark(marked)
  for h in pairs(marked) do redis.call('LREM', h, 0, '') end
end

-- The payload of a job of an earlier version.
local function plkey(id) return P .. 'pl:' .. id end

-- The fields of a job, in the order the scripts return them (and the
-- names of an earlier version's hash fields).
local jobFields = {'webhook', 'event', 'action', 'type', 'created', 'redelivery', 'attempts', 'due', 'payload'}

-- decode returns the jobFields values of a job's string.
local function decode(s)
  local f, pos = {}, 1
  for i = 1, 8 do
    local c = string.find(s, ':', pos, true)
    local n = tonumber(string.sub(s, pos, c - 1))
    f[i] = string.sub(s, c + 1, c + n)
    pos = c + n + 1
  end
  f[9] = string.sub(s, pos)
  return f
end

-- encode is decode's inverse.
local function encode(f)
  local out = {}
  for i = 1, 8 do out[i] = #f[i] .. ':' .. f[i] end
  out[9] = f[9]
  return table.concat(out)
end

-- oldjob returns the jobFields values of an earlier version's job, or nil.
local function oldjob(id)
  local f = redis.call('HMGET', jobkey(id), unpack(jobFields))
  if not f[1] then return nil end
  f[9] = redis.call('GET', plkey(id)) or f[9]
  return f
end

-- jobof returns a job's jobFields values, or nil when there is no job id.
local function jobof(id)
  local s = redis.call('GET', jkey(id))
  if s then return decode(s) end
  return oldjob(id)
end

-- webhookof returns the webhook of job id, or nil when there is no job id.
-- It reads the string's first field only: the payload stays out of Lua,
-- which hashes every byte of every string it is given.
local function webhookof(id)
  local head = redis.call('GETRANGE', jkey(id), 0, 63)
  if head == '' then return redis.call('HGET', jobkey(id), 'webhook') or nil end
  local c = string.find(head, ':', 1, true)
  local n = tonumber(string.sub(head, 1, c - 1))
  if c + n > #head then head = redis.call('GETRANGE', jkey(id), 0, c + n - 1) end
  return string.sub(head, c + 1, c + n)
end

-- setjob writes a job's fields back after a change of attempts or due.
local function setjob(id, f)
  if redis.call('EXISTS', jobkey(id)) == 1 then
    redis.call('HSET', jobkey(id), 'attempts', f[7], 'due', f[8])
  else
    redis.call('SET', jkey(id), encode(f))
  end
end

-- jobkeys appends the keys a job may have, of either version, to keys.
local function jobkeys(keys, id)
  keys[#keys + 1], keys[#keys + 2], keys[#keys + 3] = jkey(id), jobkey(id), plkey(id)
end

-- A leased job's token is in k.leases (id -> token), not in the job, so
-- that leasing or acking many jobs writes one command for all of them. The
-- job keeps the attempts made before the lease: the lease's own attempt
-- is written when it ends, by failScript, or by maintainScript when the
-- lease runs out.
--
-- hold writes leases (a list of id, token pairs). It also writes the
-- field '~hashtable', whose value is longer than hash-max-listpack-value
-- (64 bytes by default): Redis then keeps k.leases a hash table for good.
-- Kept as a listpack (up to hash-max-listpack-entries fields, 512 by
-- default), every HSET, HMGET and HDEL of it looked at the fields one by
-- one, and a busy dispatcher holds a few hundred leases: that was a sixth
-- of Redis's instructions.
local hashtable = 'this value is longer than 64 bytes: it keeps the hash a hash table'
local function hold(leases)
  leases[#leases + 1], leases[#leases + 2] = '~hashtable', hashtable
  many('HSET', k.leases, leases)
end

-- deljob removes a job.
local function deljob(id)
  redis.call('DEL', jkey(id), jobkey(id), plkey(id))
end

-- queue indexes a job as queued: by due per webhook and overall, by
-- creation. While k.batch is set (a script that queues many jobs), the
-- overall indexes are added to once, by flush, for all of them (and the
-- strings of keepjob written).
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

-- flush adds the jobs queued since k.batch was set to the overall indexes,
-- and writes the strings of the jobs added.
local function flush()
  local b = k.batch
  k.batch = nil
  if b and #b.p > 0 then many('MSET', nil, b.p) end
  if b and #b.q > 0 then
    many('ZADD', k.queued, b.q)
    many('ZADD', k.created, b.c)
  end
end

local function unqueue(id, webhook)
  redis.call('ZREM', P .. 'q:' .. webhook, id)
  redis.call('ZREM', k.queued, id)
  redis.call('ZREM', k.created, id)
end

-- keepjob keeps a new job, not queued (a job leased as it is made), from
-- its string.
local function keepjob(id, s)
  local b = k.batch
  if b then
    b.p[#b.p + 1], b.p[#b.p + 2] = jkey(id), s
  else
    redis.call('SET', jkey(id), s)
  end
end

-- addjob keeps a new job and queues it: the values are those Go's jobArgs
-- gives (the job's webhook, due and created, then its string).
local function addjob(id, webhook, due, created, s)
  keepjob(id, s)
  queue(id, webhook, due, created)
end

-- undead removes the dead letter id of webhook.
local function undead(id, webhook)
  redis.call('DEL', P .. 'dl:' .. id)
  redis.call('ZREM', P .. 'dead:' .. webhook, id)
  redis.call('SREM', k.deadall, id)
end

-- purge removes up to batch jobs of the deleted webhook id (from its queue
-- as deleteWebhookScript left it, dq:<id>), and forgets id in k.deleting
-- once none is left. It returns how many are left. A webhook's queue may
-- hold a million jobs: removing them in one script would hold Redis for
-- seconds.
local function purge(id, batch)
  local dq = P .. 'dq:' .. id
  local ids = redis.call('ZRANGE', dq, 0, batch - 1)
  if #ids > 0 then
    local keys = {}
    for _, j in ipairs(ids) do jobkeys(keys, j) end
    many('DEL', nil, keys)
    many('ZREM', k.queued, ids)
    many('ZREM', k.created, ids)
    redis.call('ZREMRANGEBYRANK', dq, 0, #ids - 1)
  end
  local left = redis.call('ZCARD', dq)
  if left == 0 then redis.call('SREM', k.deleting, id) end
  return left
end

-- requeue makes a leased job queued again, its lease gone.
local function requeue(id, webhook, due, created)
  redis.call('HDEL', k.leases, id)
  redis.call('ZREM', k.leased, id)
  queue(id, webhook, due, created)
end

-- record adds history entries (a list, oldest first) to a webhook's, newest
-- first, and keeps limit: it cuts the list back to limit once it holds 16
-- more, not after every entry (History reads the newest limit only).
local function record(webhook, entries, limit)
  local h = P .. 'history:' .. webhook
  local n = 0
  for i = 1, #entries, 1000 do
    n = redis.call('LPUSH', h, unpack(entries, i, math.min(i + 999, #entries)))
  end
  if n > limit + 16 then
    redis.call('LTRIM', h, 0, limit - 1)
  end
end

-- bury turns the job id (no longer indexed as queued or leased), whose
-- jobFields values are j, into a dead letter of its webhook, replacing an
-- older dead letter of the same delivery, and drops that webhook's oldest
-- dead letters beyond limit.
local function bury(id, j, err, died, limit)
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
  deljob(id)
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
var readScript = newScript("read", `
return read(ARGV[2], ARGV[3], ARGV[4])
`)

// commitScript commits an Ingest transaction: it re-reads what the
// transaction read and, if every answer is still the same, applies its writes
// in order. Otherwise it changes nothing.
//
// KEYS: [1] queued, [2] created, [3] leased, [4] leases.
// ARGV: [1] prefix, [2] number of reads R, then R reads of 4 values each
// (kind, a, b, the answer the transaction got), then the writes, each an op
// name and its values:
//
//	seen   id untilMs                 mark an event id seen until untilMs (PXAT)
//	job    id webhook due created s   queue a job (s: its string, see encodeJob),
//	                                  unless a job with its id exists
//	ljob   id … s token until         the same, leased with token until (ns)
//	                                  instead of queued
//	ijob   id                         a job of an inbox entry (see ibox)
//	ibox   entry dest counts n proc until made  push the entry of the ijob
//	                                  writes before it: onto the inbox (dest 'i':
//	                                  its counts onto inboxn, its n jobs onto
//	                                  inboxjobs, the newest making time of the
//	                                  inbox's jobs raised to made, µs), or onto
//	                                  proc's list, its holders score raised to
//	                                  until (µs), leased (dest 'h': n leased jobs
//	                                  of proc) or buffered (dest 'b': n buffered
//	                                  jobs of proc, made as for 'i') unless the
//	                                  inbox holds entries (then as 'i')
//	put    repo digest mediaType tag  record a manifest; a tag (empty: none) points at it
//	deltag repo tag                   forget a tag
//	delman repo digest                forget a manifest (its tags stay)
//
// Returns: {0}: a read changed (nothing written); {2, ids…}: the ijob
// jobs whose ids exist (nothing written); {1, tokens…}: committed, the
// tokens those of the ljob writes whose job existed (not leased), and
// '~inbox' for each 'b' entry that went to the inbox.
var commitScript = newScript("commit", `
k.queued, k.created, k.leased, k.leases = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local i = 3
for _ = 1, tonumber(ARGV[2]) do
  if read(ARGV[i], ARGV[i + 1], ARGV[i + 2]) ~= ARGV[i + 3] then return {0} end
  i = i + 4
end
local width = {seen = 3, job = 6, ljob = 8, ijob = 2, ibox = 8, put = 5, deltag = 3, delman = 3}
k.batch = {q = {}, c = {}, p = {}}
local w, jobs, ijobs = i, {}, {}
while w <= #ARGV do
  local n = width[ARGV[w]]
  if not n or w + n - 1 > #ARGV then return redis.error_reply('bad write at ARGV ' .. w) end
  local op = ARGV[w]
  if op == 'job' or op == 'ljob' or op == 'ijob' then
    local id = ARGV[w + 1]
    jobs[#jobs + 1], jobs[#jobs + 2] = jkey(id), jobkey(id)
    if op == 'ijob' then ijobs[#ijobs + 1] = id end
  end
  w = w + n
end
-- none: no job of this commit exists yet (the usual case), asked once for
-- all; made: the jobs this commit added; tokens and untils: the leases of
-- the ljob jobs added, written once for all. An entry cannot leave a job
-- out: Go commits again without those that exist.
local none, made, out = #jobs == 0 or many('EXISTS', nil, jobs) == 0, {}, {1}
if none and #ijobs > 0 then
  local _, in_ij = many('SMISMEMBER', ijset(), ijobs)
  for _, m in ipairs(in_ij) do
    if m == 1 then none = false end
  end
end
if not none then
  local taken = {2}
  for _, id in ipairs(ijobs) do
    if jobexists(id) then taken[#taken + 1] = id end
  end
  if #taken > 1 then return taken end
end
local tokens, untils = {}, {}
while i <= #ARGV do
  local op = ARGV[i]
  if op == 'seen' then
    redis.call('SET', P .. 'seen:' .. ARGV[i + 1], '1', 'PXAT', ARGV[i + 2])
  elseif op == 'job' or op == 'ljob' then
    local id = ARGV[i + 1]
    if not made[id] and (none or not jobexists(id)) then
      made[id] = true
      if op == 'job' then
        addjob(unpack(ARGV, i + 1, i + 5))
      else
        keepjob(id, ARGV[i + 5])
        tokens[#tokens + 1], tokens[#tokens + 2] = id, ARGV[i + 6]
        untils[#untils + 1], untils[#untils + 2] = us(ARGV[i + 7]), id
      end
    elseif op == 'ljob' then
      out[#out + 1] = ARGV[i + 6] -- not leased: the job existed
    end
  elseif op == 'ijob' then
    -- its id joins ij below, once for all
  elseif op == 'ibox' then
    local entry, dest, counts, proc = ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 5]
    -- An entry for proc's buffer goes to the inbox instead while the
    -- inbox holds entries: they are older, and would wait behind it.
    if dest == 'b' and redis.call('LLEN', P .. 'inbox') > 0 then
      dest = 'i'
      out[#out + 1] = '~inbox'
    end
    if dest == 'i' then
      redis.call('RPUSH', P .. 'inbox', entry)
      redis.call('RPUSH', P .. 'inboxn', counts)
      redis.call('INCRBY', P .. 'inboxjobs', ARGV[i + 4])
    else
      redis.call('RPUSH', P .. 'held:' .. proc, entry)
      redis.call('HINCRBY', P .. 'hcount', proc .. (dest == 'h' and ':l' or ':b'), ARGV[i + 4])
      redis.call('ZADD', P .. 'holders', 'GT', ARGV[i + 6], proc)
    end
    if dest ~= 'h' then redis.call('ZADD', P .. 'inmade', 'GT', ARGV[i + 7], 'made') end
  elseif op == 'put' then
    local repo, digest, mt, tag = ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
    -- A hash table, as leases (see hold): a repository takes hundreds of
    -- pushes, and each searched its listpack field after field.
    redis.call('HSET', P .. 'manifests:' .. repo, digest, mt, '~hashtable', hashtable)
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
    local h = P .. 'manifests:' .. ARGV[i + 1]
    redis.call('HDEL', h, ARGV[i + 2])
    if redis.call('HLEN', h) == 1 then redis.call('DEL', h) end -- only '~hashtable' left
  end
  i = i + width[op]
end
flush()
if #ijobs > 0 then many('SADD', ijset(), ijobs) end
if #tokens > 0 then
  hold(tokens)
  many('ZADD', k.leased, untils)
end
return out
`)

// leaseScript leases, for each webhook asked, up to its count of due queued
// jobs, oldest due first (then by id), and finds when its earliest job still
// queued is due (to the microsecond, as due times are compared).
//
// With an inbox (inbox.go), a webhook's count comes with the due times of
// the jobs the process's buffer would serve it (µs, oldest first, ','
// between): the script leases only the queued jobs that come before them,
// oldest due first, and the buffer serves the rest.
//
// KEYS: [1] queued, [2] leased, [3] created, [4] leases.
// ARGV: [1] prefix, [2] now (µs), [3] lease until (ns), [4] token base,
// [5] '3' when each webhook has its buffer's due times ('2' not), then per
// webhook: its id, count (and due times).
// Returns: one array per webhook: {webhook id, due (ns, a whole number of
// µs) of its earliest queued job or empty, then per job leased {its string
// (see encodeJob; attempts not counting this one), id, token}}. Job tokens
// are the base and a counter: new for every lease.
var leaseScript = newScript("lease", `
k.queued, k.leased, k.created, k.leases = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local now, untilUs, base = ARGV[2], us(ARGV[3]), ARGV[4]
local out, n = {}, 0
-- Every read and write is one command for all the jobs leased. Numbers go
-- to Redis as strings, and scores are asked for once a webhook: Redis
-- turns a Lua number it is given, and a score it answers, into text with
-- printf's %.17g, which cost more than the rest of the lease.
local ids, jobs, jks, leases, tokens = {}, {}, {}, {}, {}
local step = tonumber(ARGV[5])
for i = 6, #ARGV, step do
  local webhook, want = ARGV[i], ARGV[i + 1]
  local qk = P .. 'q:' .. webhook
  local res = {webhook, ''}
  -- Its due jobs, oldest due first (then by id), up to want: its first by
  -- rank.
  local due = {}
  if want ~= '0' and step == 3 and ARGV[i + 2] ~= '' then
    -- Of its due jobs and the buffer's, the first want by due time: the
    -- queue's among them.
    local got = redis.call('ZRANGE', qk, '-inf', now, 'BYSCORE', 'LIMIT', '0', want, 'WITHSCORES')
    local buffered, q, b = {}, 1, 1
    for d in string.gmatch(ARGV[i + 2], '[^,]+') do buffered[#buffered + 1] = tonumber(d) end
    for _ = 1, tonumber(want) do
      local score = got[2 * q]
      if score and (not buffered[b] or tonumber(score) <= buffered[b]) then
        due[#due + 1] = got[2 * q - 1]
        q = q + 1
      elseif buffered[b] then
        b = b + 1
      else
        break
      end
    end
  elseif want ~= '0' then
    due = redis.call('ZRANGE', qk, '-inf', now, 'BYSCORE', 'LIMIT', '0', want)
  end
  for _, id in ipairs(due) do
    n = n + 1
    local token = string.format('%s.%d', base, n)
    local f = {false, id, token}
    res[#res + 1] = f
    ids[n], jobs[n], jks[n] = id, f, jkey(id)
    leases[#leases + 1], leases[#leases + 2] = untilUs, id
    tokens[#tokens + 1], tokens[#tokens + 2] = id, token
  end
  if #due > 0 then redis.call('ZREMRANGEBYRANK', qk, '0', string.format('%d', #due - 1)) end
  -- The first one left tells when the next is due.
  local first = redis.call('ZRANGE', qk, '0', '0', 'WITHSCORES')
  if first[2] then res[2] = first[2] .. '000' end -- µs to ns
  out[#out + 1] = res
end
if n > 0 then
  local _, got = many('MGET', nil, jks)
  for j = 1, n do
    -- An earlier version's job is a hash: its fields as a string.
    local old = not got[j] and oldjob(ids[j])
    jobs[j][1] = got[j] or (old and encode(old)) or ''
  end
  hold(tokens)
  many('ZADD', k.leased, leases)
  many('ZREM', k.queued, ids)
  many('ZREM', k.created, ids)
end
return out
`)

// ackScript finishes delivered jobs: one or more jobs, each on its own (the
// acks of workers that finished at once, see Ack). Their history entries are
// already in their webhooks' histories, pushed by the same transaction just
// before (see runAcks): the script takes back the entry of each job whose
// lease is no longer held, so that such an ack changes nothing.
//
// KEYS: [1] leased, [2] leases.
// ARGV: [1] prefix, [2] 'i' or 'v': how an entry is found, then per job: job
// id, lease token, webhook id, and its entry's index in the webhook's
// history ('i': pushed by the same transaction; empty: not pushed) or the
// entry itself ('v': pushed earlier, others may have been pushed since; the
// function was not loaded when the transaction ran).
// Returns: per job, in order, 1 done or 0 the lease is no longer held.
var ackScript = newScript("ack", `
k.leased, k.leases = KEYS[1], KEYS[2]
local byIndex = ARGV[2] == 'i'
local ids = {}
for i = 3, #ARGV, 4 do ids[#ids + 1] = ARGV[i] end
local _, held = many('HMGET', k.leases, ids)
-- Every write is one command for all the jobs acked.
local out, done, keys, marked = {}, {}, {}, {}
for j, id in ipairs(ids) do
  local i = 3 + 4 * (j - 1)
  local token, at = ARGV[i + 1], ARGV[i + 3]
  if token ~= '' and held[j] == token then
    out[j] = 1
    done[#done + 1] = id
    jobkeys(keys, id)
  else
    out[j] = 0
    takeback(P .. 'history:' .. ARGV[i + 2], at, byIndex, marked)
  end
end
unmark(marked)
if #done > 0 then
  many('DEL', nil, keys)
  many('HDEL', k.leases, done)
  many('ZREM', k.leased, done)
end
return out
`)

// failScript records a failed attempt and queues the job again at a new due
// time or makes it a dead letter. Go decides which, with
// store.Failure.Exhausted on the attempts and creation time of the lease;
// the script checks that the job still has those.
//
// KEYS: [1] queued, [2] leased, [3] created, [4] deadall, [5] seq, [6] leases.
// ARGV: [1] prefix, [2] job id, [3] lease token, [4] attempts, [5] created
// (ns), [6] '1' dead or '0' retry, [7] due (ns), [8] error, [9] died (ns),
// [10] history entry (JSON), [11] history limit, [12] dead letter limit.
// Returns: 1 queued again, 2 dead, 0 the lease is no longer held, -1 the
// lease's attempts or creation time are not the job's (nothing changed).
var failScript = newScript("fail", `
k.queued, k.leased, k.created, k.deadall, k.seq, k.leases = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local id = ARGV[2]
if ARGV[3] == '' or redis.call('HGET', k.leases, id) ~= ARGV[3] then return 0 end
-- The job has the attempts before this lease's.
local j = jobof(id)
if not j or tostring(tonumber(j[7]) + 1) ~= ARGV[4] or j[5] ~= ARGV[5] then return -1 end
local ret = 1
j[7] = ARGV[4]
if ARGV[6] == '1' then
  redis.call('HDEL', k.leases, id)
  redis.call('ZREM', k.leased, id)
  bury(id, j, ARGV[8], ARGV[9], tonumber(ARGV[12]))
  ret = 2
else
  j[8] = ARGV[7]
  setjob(id, j)
  requeue(id, j[1], ARGV[7], j[5])
end
record(j[1], {ARGV[10]}, tonumber(ARGV[11]))
return ret
`)

// releaseScript puts a leased job back in the queue untried: due as it was,
// its attempt not counted (the job keeps the attempts before the lease).
//
// KEYS: [1] queued, [2] leased, [3] created, [4] leases.
// ARGV: [1] prefix, [2] job id, [3] lease token.
// Returns: 1 done, 0 the lease is no longer held.
var releaseScript = newScript("release", `
k.queued, k.leased, k.created, k.leases = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local id = ARGV[2]
if ARGV[3] == '' or redis.call('HGET', k.leases, id) ~= ARGV[3] then return 0 end
local j = jobof(id)
requeue(id, j[1], j[8], j[5])
return 1
`)

// maintainScript puts jobs whose lease ended at or before now back in the
// queue, then makes dead letters of queued jobs made before the cutoff,
// oldest made first, then removes jobs of a deleted webhook that
// DeleteWebhook left (its process ended midway), at most batch of each.
//
// KEYS: [1] queued, [2] leased, [3] created, [4] deadall, [5] seq, [6] leases,
// [7] deleting.
// ARGV: [1] prefix, [2] now (µs), [3] cutoff (µs; empty for none), [4] error
// of the expired, [5] died (ns), [6] dead letter limit, [7] batch.
// Returns: {reclaimed, expired}.
var maintainScript = newScript("maintain", `
k.queued, k.leased, k.created, k.deadall, k.seq, k.leases = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
k.deleting = KEYS[7]
local batch = tonumber(ARGV[7])
local reclaimed, expired = 0, 0
for _, id in ipairs(redis.call('ZRANGEBYSCORE', k.leased, '-inf', ARGV[2], 'LIMIT', 0, batch)) do
  local j = jobof(id)
  if j then
    -- The attempt in flight counts. (A lease of an earlier version, with
    -- no token in leases, counted it when it was made.)
    if redis.call('HEXISTS', k.leases, id) == 1 then
      j[7] = tostring(tonumber(j[7]) + 1)
      setjob(id, j)
    end
    requeue(id, j[1], j[8], j[5])
    reclaimed = reclaimed + 1
  else
    redis.call('HDEL', k.leases, id)
    redis.call('ZREM', k.leased, id)
  end
end
if ARGV[3] ~= '' then
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', k.created, '-inf', '(' .. ARGV[3], 'LIMIT', 0, batch)) do
    local j = jobof(id)
    local webhook = j and j[1]
    if webhook and redis.call('SISMEMBER', k.deleting, webhook) == 1 then
      purge(webhook, batch) -- its webhook is gone: no dead letter
    elseif webhook then
      unqueue(id, webhook)
      bury(id, j, ARGV[4], ARGV[5], tonumber(ARGV[6]))
      expired = expired + 1
    else
      redis.call('ZREM', k.created, id)
    end
  end
end
local gone = redis.call('SRANDMEMBER', k.deleting)
if gone then purge(gone, batch) end
return {reclaimed, expired}
`)

// depthScript counts jobs by state at now: the queue's, and the inbox's
// (docs/redis.md, "Inbox"), whose jobs are due when made: it counts them
// all ready once the newest of them was made. Jobs go into entries only
// when made within a minute of the clock (inboxJob), so at the clock's now
// that is all of them but those of a process whose clock is ahead.
//
// KEYS: [1] queued, [2] leased, [3] deadall.
// ARGV: [1] prefix, [2] now (µs).
// Returns: {ready, delayed, leased, dead}.
var depthScript = newScript("depth", `
local ready, leased = redis.call('ZCOUNT', KEYS[1], '-inf', ARGV[2]), redis.call('ZCARD', KEYS[2])
local delayed = redis.call('ZCOUNT', KEYS[1], '(' .. ARGV[2], '+inf')
-- The inbox's jobs and those processes took from it, due when made: ready
-- once the newest was made, delayed before.
local inbox = tonumber(redis.call('GET', P .. 'inboxjobs') or '0')
local hc = redis.call('HGETALL', P .. 'hcount')
for i = 1, #hc, 2 do
  if string.sub(hc[i], -2) == ':b' then inbox = inbox + tonumber(hc[i + 1]) else leased = leased + tonumber(hc[i + 1]) end
end
local made = redis.call('ZSCORE', P .. 'inmade', 'made')
if made and tonumber(ARGV[2]) < tonumber(made) then delayed = delayed + inbox else ready = ready + inbox end
return {ready, delayed, leased, redis.call('SCARD', KEYS[3])}
`)

// recordScript adds an entry to a webhook's history (a ping's).
//
// KEYS: none.
// ARGV: [1] prefix, [2] webhook id, [3] entry (JSON), [4] history limit.
// Returns: 1.
var recordScript = newScript("record", `
record(ARGV[2], {ARGV[3]}, tonumber(ARGV[4]))
return 1
`)

// deadLettersScript reads a webhook's dead letters, the last to die first.
//
// KEYS: none.
// ARGV: [1] prefix, [2] webhook id.
// Returns: per dead letter {id, error, died, the jobFields values}.
var deadLettersScript = newScript("deadLetters", `
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
var createWebhookScript = newScript("createWebhook", `
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
var updateWebhookScript = newScript("updateWebhook", `
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

// deleteWebhookScript removes a webhook with its leased jobs, dead letters
// and history, and leaves its queued jobs for purgeScript: it renames its
// queue dq:<id> and adds the id to deleting.
//
// KEYS: [1] webhooks, [2] names, [3] webhooks:version, [4] queued,
// [5] leased, [6] created, [7] deadall, [8] leases, [9] deleting.
// ARGV: [1] prefix, [2] id, [3] new version.
// Returns: 1 done, 0 no webhook with the id.
var deleteWebhookScript = newScript("deleteWebhook", `
k.queued, k.leased, k.created, k.deadall, k.leases, k.deleting = KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9]
local id = ARGV[2]
local old = redis.call('HGET', KEYS[1], id)
if not old then return 0 end
redis.call('HDEL', KEYS[2], cjson.decode(old).name)
redis.call('HDEL', KEYS[1], id)
redis.call('SET', KEYS[3], ARGV[3])
-- The queued jobs are left for purge, a batch a script.
local qk, dq = P .. 'q:' .. id, P .. 'dq:' .. id
if redis.call('EXISTS', qk) == 1 then
  if redis.call('EXISTS', dq) == 1 then
    redis.call('ZUNIONSTORE', dq, 2, dq, qk)
    redis.call('DEL', qk)
  else
    redis.call('RENAME', qk, dq)
  end
  redis.call('SADD', k.deleting, id)
end
for _, j in ipairs(redis.call('ZRANGE', k.leased, 0, -1)) do
  if webhookof(j) == id then
    deljob(j)
    redis.call('HDEL', k.leases, j)
    redis.call('ZREM', k.leased, j)
  end
end
local dz = P .. 'dead:' .. id
for _, d in ipairs(redis.call('ZRANGE', dz, 0, -1)) do
  redis.call('DEL', P .. 'dl:' .. d)
  redis.call('SREM', k.deadall, d)
end
redis.call('DEL', dz, P .. 'history:' .. id)
-- Its jobs in inbox entries are dropped as processes take them; they
-- leave the inbox's count now, and gonen keeps how many the takes of
-- those entries are not to count out again. A scan of the entries'
-- counts, as rare as deleting a webhook.
local n = 0
for _, c in ipairs(redis.call('LRANGE', P .. 'inboxn', 0, -1)) do
  local f = countsOf(c)
  for i = 1, #f, 2 do
    if f[i] == id then n = n + tonumber(f[i + 1]) end
  end
end
if n > 0 then
  redis.call('DECRBY', P .. 'inboxjobs', n)
  redis.call('HINCRBY', P .. 'gonen', id, n)
end
redis.call('SADD', P .. 'gone', id)
return 1
`)

// purgeJobsScript removes up to batch queued jobs of a deleted webhook (see
// purge).
//
// KEYS: [1] queued, [2] created, [3] deleting.
// ARGV: [1] prefix, [2] webhook id, [3] batch.
// Returns: how many are left.
var purgeJobsScript = newScript("purgeJobs", `
k.queued, k.created, k.deleting = KEYS[1], KEYS[2], KEYS[3]
return purge(ARGV[2], tonumber(ARGV[3]))
`)

// announceScript records this process's hash of its config-file webhooks,
// forgets processes not heard from since a cutoff, and returns every hash.
//
// KEYS: [1] replicas, [2] replicas:config.
// ARGV: [1] prefix, [2] process id, [3] hash, [4] now (ms), [5] cutoff (ms).
// Returns: flat {process id, hash, ...}.
var announceScript = newScript("announce", `
redis.call('ZADD', KEYS[1], ARGV[4], ARGV[2])
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
for _, gone in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[5])) do
  redis.call('ZREM', KEYS[1], gone)
  redis.call('HDEL', KEYS[2], gone)
end
return redis.call('HGETALL', KEYS[2])
`)
