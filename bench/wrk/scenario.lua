-- One script for every scenario; the runner passes what it needs in the environment.
-- BENCH_SCENARIO: create | create_contended | list | list_filtered | search | get | comment
-- | patch_status | inbound | create_spread (create_contended: our full create against the
-- ceiling's bare one, which takes the number and inserts the row; the ceiling reads `bare`,
-- our API ignores it; create_spread: creates by the BENCH_ACCOUNTS in turn)
-- BENCH_TOKEN: bearer token; BENCH_CUSTOMER: a customer id of the organization;
-- BENCH_IDS: file of ticket ids (get); BENCH_OPEN_IDS: ids of open tickets (comment; and
-- patch_status moves each one open -> pending -> open ..., every thread its own slice).

local scenario = os.getenv("BENCH_SCENARIO")
local token = os.getenv("BENCH_TOKEN")
local customer = os.getenv("BENCH_CUSTOMER")
local base = "/api/v1"
local threads = {}
local counter = 0

local function load(path)
  local ids = {}
  if path then
    for line in io.lines(path) do ids[#ids + 1] = line end
  end
  return ids
end

local ids = load(os.getenv("BENCH_IDS"))
local open_ids = load(os.getenv("BENCH_OPEN_IDS"))

-- inbound: BENCH_INBOUND is a file of signed deliveries, one per line (webhook-id,
-- webhook-timestamp, webhook-signature, the channel's inbound path, body; tab-separated),
-- each sent once.
local inbound = {}
for _, line in ipairs(load(os.getenv("BENCH_INBOUND"))) do
  local id, timestamp, signature, path, body =
    line:match("^([^\t]*)\t([^\t]*)\t([^\t]*)\t([^\t]*)\t(.*)$")
  inbound[#inbound + 1] = {
    headers = {
      ["webhook-id"] = id,
      ["webhook-timestamp"] = timestamp,
      ["webhook-signature"] = signature,
      ["Content-Type"] = "application/json",
    },
    path = path,
    body = body,
  }
end

-- create_spread: BENCH_ACCOUNTS is a file of an agent's token and a customer id of each
-- organization, tab-separated, one organization per line.
local accounts = {}
for _, line in ipairs(load(os.getenv("BENCH_ACCOUNTS"))) do
  local account_token, account_customer = line:match("^([^\t]*)\t(.*)$")
  accounts[#accounts + 1] = {
    headers = {
      ["Authorization"] = "Bearer " .. account_token,
      ["Content-Type"] = "application/json",
    },
    customer = account_customer,
  }
end

function setup(thread)
  thread:set("thread_index", #threads)
  table.insert(threads, thread)
end

function init(args)
  math.randomseed(os.time() + (thread_index or 0) * 7919)
end

local headers = {
  ["Authorization"] = "Bearer " .. token,
  ["Content-Type"] = "application/json",
}

local function random_id()
  return ids[math.random(#ids)]
end

request = function()
  counter = counter + 1
  if scenario == "create" then
    return wrk.format("POST", base .. "/tickets", headers,
      '{"subject":"Bench ticket","customer_id":"' .. customer .. '","tags":["bench"]}')
  elseif scenario == "create_contended" then
    return wrk.format("POST", base .. "/tickets?bare=1", headers,
      '{"subject":"Bench ticket","customer_id":"' .. customer .. '","tags":["bench"]}')
  elseif scenario == "list" then
    return wrk.format("GET", base .. "/tickets", headers)
  elseif scenario == "list_filtered" then
    return wrk.format("GET", base .. "/tickets?status=open&priority=high", headers)
  elseif scenario == "search" then
    return wrk.format("GET", base .. "/tickets?q=printer", headers)
  elseif scenario == "get" then
    return wrk.format("GET", base .. "/tickets/" .. random_id(), headers)
  elseif scenario == "comment" then
    -- Open tickets only: a closed or cancelled one takes no more comments (409).
    return wrk.format("POST", base .. "/tickets/" .. open_ids[math.random(#open_ids)] .. "/comments", headers,
      '{"content":"Bench reply","comment_type":"internal"}')
  elseif scenario == "inbound" then
    -- Every thread its own slice: no delivery twice (a repeat would be a cheap duplicate).
    local stride = tonumber(os.getenv("BENCH_THREADS"))
    local slot = ((thread_index or 0) + stride * (counter - 1)) % #inbound + 1
    local delivery = inbound[slot]
    return wrk.format("POST", delivery.path, delivery.headers, delivery.body)
  elseif scenario == "create_spread" then
    local account = accounts[((thread_index or 0) + counter) % #accounts + 1]
    return wrk.format("POST", base .. "/tickets", account.headers,
      '{"subject":"Bench ticket","customer_id":"' .. account.customer .. '","tags":["bench"]}')
  elseif scenario == "patch_status" then
    local stride = tonumber(os.getenv("BENCH_THREADS"))
    local per_thread = math.floor(#open_ids / stride)
    local k = counter - 1
    local slot = (thread_index or 0) + stride * (k % per_thread) + 1
    local cycle = math.floor(k / per_thread)
    local status = (cycle % 2 == 0) and "pending" or "open"
    return wrk.format("PATCH", base .. "/tickets/" .. open_ids[slot], headers,
      '{"status":"' .. status .. '"}')
  end
end
