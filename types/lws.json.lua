---@meta lws.json
-- lua-language-server definitions of lws.json, the JSON encoder and
-- decoder that keeps [] and {} apart (docs/reference/json.md).

---@class lws.json
---@field null table JSON null (a key set to nil would vanish); tostring gives "null"
---@field array_mt table the metatable of arrays (json.array, decoded arrays)
---@field object_mt table the metatable of objects (json.object, decoded objects)
local json = {}

--- Mark t (default a new table) as a JSON array: `json.array {}` is `[]`.
---@generic T: table
---@param t? T
---@return T
function json.array(t) end
--- Mark t (default a new table) as a JSON object: `json.object {}` is `{}`.
---@generic T: table
---@param t? T
---@return T
function json.object(t) end
---@param v any
---@return boolean
function json.is_array(v) end
---@param v any
---@return boolean
function json.is_object(v) end
--- Already-encoded JSON text, written as is.
---@param text string
---@return table
function json.raw(text) end
--- Raises on what JSON cannot express (a non-UTF-8 string, a function,
--- a key that is neither string nor number, nesting deeper than 1000).
---@param value any
---@return string text
function json.encode(value) end
--- The shortest text that reads back as the same number (NaN and
--- infinities: "null").
---@param n number
---@return string
function json.encode_number(n) end
--- The whole text (from byte init) must be one JSON value; raises on bad
--- input ("json: unexpected character at character 3").
---@param text string
---@param init? integer (default 1)
---@return any value
function json.decode(text, init) end
---@param text string
---@param init? integer (default 1)
---@return any value nil on bad input
---@return string? err
function json.try_decode(text, init) end

return json
