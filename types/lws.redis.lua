---@meta lws.redis
-- lua-language-server definitions of lws.redis, the Redis client on the
-- lws loop (docs/reference/redis.md).

---@class lws.RedisReconnectOptions
---@field min? number ms before attempt 1 (default 100)
---@field max? number cap on the delay, ms (default 10000)
---@field factor? number growth per attempt (default 2)
---@field jitter? number 0..1, share of the delay taken off at random (default 0.5)

---@class lws.RedisOptions
---@field host? string (default "127.0.0.1"; resolved with a blocking getaddrinfo: prefer an address)
---@field port? integer 1..65535 (default 6379)
---@field username? string AUTH username password on every connection (default none)
---@field password? string AUTH [username] password (default none)
---@field db? integer SELECT db on the command connection (default none)
---@field connect_timeout? number ms for a connection to become ready (default 5000)
---@field ping_interval? number|false ms between health PINGs; one unanswered at the next tick is an outage (default 5000; false: off)
---@field max_pending? number commands in flight on the command connection (default 10000)
---@field reconnect? boolean|lws.RedisReconnectOptions backoff between attempts (default on with the defaults; false: a failure closes the client)
---@field report_errors? boolean report an outage's first failure through lws.on_error (default true)

---@class lws.RedisStats
---@field state "connecting"|"ready"|"waiting"|"closed" the command connection
---@field subscribe_state? "connecting"|"ready"|"waiting"|"closed" the subscription connection, once there is one
---@field pending integer commands in flight
---@field dropped integer commands and publishes refused
---@field failures integer
---@field outages integer
---@field reconnects integer
---@field errors integer error replies
---@field messages integer subscription messages received

--- A Redis client. Events: "ready"(), "subscribe"(channel, count),
--- "psubscribe"(pattern, count), "ssubscribe"(channel, count), "disconnect"(role, reason), "reconnecting"(role, attempt, delay_ms),
--- "error"(message), "close"(). Codes: "down", "full", "closed", "redis".
---@class lws.RedisClient: lws.Emitter
local Redis = {}
---@param argv string[] { "SET", "k", "v" } (not (P|S)(UN)SUBSCRIBE: use subscribe/psubscribe/ssubscribe)
---@param fn? fun(reply: any, err: string?, code: string?) exactly once when the call returned true
---@return true|nil ok
---@return string? err
---@return string? code "down", "full", "closed"
function Redis:command(argv, fn) end
---@param channel string
---@param message string
---@param fn? fun(receivers: integer|nil, err: string?, code: string?)
---@return true|nil ok
---@return string? err
---@return string? code "down", "full", "closed"
function Redis:publish(channel, message, fn) end
---@param channel string
---@param fn fun(message: string, channel: string)
---@return true|nil ok
---@return string? err
---@return string? code "closed"
function Redis:subscribe(channel, fn) end
---@param channel string
---@param fn? function one handler (default: all of the channel)
---@return boolean was_subscribed
function Redis:unsubscribe(channel, fn) end
--- Every channel matching a glob-style pattern (Redis PSUBSCRIBE); subscribed again after every reconnect.
---@param pattern string "news.*"
---@param fn fun(message: string, channel: string, pattern: string)
---@return true|nil ok
---@return string? err
---@return string? code "closed"
function Redis:psubscribe(pattern, fn) end
---@param pattern string
---@param fn? function one handler (default: all of the pattern)
---@return boolean was_subscribed
function Redis:punsubscribe(pattern, fn) end
--- Redis 7 sharded pub/sub (SPUBLISH).
---@param channel string
---@param message string
---@param fn? fun(receivers: integer|nil, err: string?, code: string?)
---@return true|nil ok
---@return string? err
---@return string? code "down", "full", "closed"
function Redis:spublish(channel, message, fn) end
--- Redis 7 sharded pub/sub (SSUBSCRIBE); subscribed again after every reconnect.
---@param channel string
---@param fn fun(message: string, channel: string)
---@return true|nil ok
---@return string? err
---@return string? code "closed"
function Redis:ssubscribe(channel, fn) end
---@param channel string
---@param fn? function one handler (default: all of the channel)
---@return boolean was_subscribed
function Redis:sunsubscribe(channel, fn) end
---@return boolean ready the command connection is ready
function Redis:ready() end
---@param drain_ms? number wait at most this long for replies to what was sent
function Redis:close(drain_ms) end
---@return lws.RedisStats
function Redis:stats() end

---@class lws.redis
---@field null userdata nil inside array replies (equal to cjson.null)
---@field hiredis_version string
---@field defaults table the option defaults
---@field reconnect_defaults table the reconnect defaults
---@field methods table the client's methods
---@field mt table the client's metatable
local redis = {}

---@param opts lws.RedisOptions
---@return lws.RedisClient
function redis.connect(opts) end
--- The delay of attempt n (exported for specs): min*factor^(n-1), at most max, less up to jitter of it.
---@param attempt integer
---@param r { min: number, max: number, factor: number, jitter: number }
---@param rand? fun(): number a source of 0..1 (default math.random)
---@return number ms
function redis.backoff(attempt, r, rand) end
--- (internal) registers the C event handlers; connect() calls it
---@param lws table
---@param handlers table
function redis.install(lws, handlers) end

return redis
