# Sourced by the bench scripts: Custodia's wrk workloads, written once.
#   CUSTODIA_FIELDS     the customer record every create stores (4 sealed fields, 2 blind indexes)
#   CUSTODIA_RECORD     a create's body: those fields under order_fulfillment
#   CUSTODIA_READ_PATH  the audited read every read workload asks for (cust-1's records)
#   write_workloads DIR TOKEN   writes DIR/{create,read,mixed,batch}.lua for a bearer TOKEN:
#     create  one record of a new subject per request
#     read    GET $CUSTODIA_READ_PATH
#     mixed   alternately create and read
#     batch   POST /v1/batch/records, 100 records of 100 new subjects per request
#   seed_read ADDR TOKEN        creates cust-1's record, so that the reads find it
CUSTODIA_FIELDS='"fields":{"email":"ada.lovelace@example.org","name":"Ada Lovelace","phone":"+442079460958","shipping_address":"12 Analytical Row, London"}'
CUSTODIA_RECORD="{\"purpose\":\"order_fulfillment\",$CUSTODIA_FIELDS}"
CUSTODIA_READ_PATH=/v1/subjects/cust-1/records/customers?purpose=order_fulfillment

seed_read() {
    curl -fs -X POST -H "Authorization: Bearer $2" -d "$CUSTODIA_RECORD" "$1/v1/subjects/cust-1/records/customers" >/dev/null
}

write_workloads() {
    local dir=$1 tok=$2
    cat >"$dir/create.lua" <<LUA
request = function()
  return wrk.format("POST", "/v1/subjects/cust-" .. math.random(1, 1000000000) .. "/records/customers",
    {["Authorization"] = "Bearer $tok", ["Content-Type"] = "application/json"}, '$CUSTODIA_RECORD')
end
LUA
    printf 'wrk.method = "GET"\nwrk.headers["Authorization"] = "Bearer %s"\n' "$tok" >"$dir/read.lua"
    cat >"$dir/mixed.lua" <<LUA
local n = 0
request = function()
  n = n + 1
  if n % 2 == 0 then
    return wrk.format("GET", "$CUSTODIA_READ_PATH", {["Authorization"] = "Bearer $tok"})
  end
  return wrk.format("POST", "/v1/subjects/cust-" .. math.random(1, 1000000000) .. "/records/customers",
    {["Authorization"] = "Bearer $tok", ["Content-Type"] = "application/json"}, '$CUSTODIA_RECORD')
end
LUA
    cat >"$dir/batch.lua" <<LUA
request = function()
  local base = math.random(1, 1000000000)
  local items = {}
  for i = 1, 100 do
    items[i] = '{"subject_id":"b' .. base .. '-' .. i .. '","collection":"customers",$CUSTODIA_FIELDS}'
  end
  return wrk.format("POST", "/v1/batch/records",
    {["Authorization"] = "Bearer $tok", ["Content-Type"] = "application/json"},
    '{"purpose":"order_fulfillment","items":[' .. table.concat(items, ",") .. ']}')
end
LUA
}
