--- What help() says of a listing (the isc.pager that c.roles:list(),
--- c:paginate() and the other listings return, written in C) and of the
--- filters each listing takes: help(listing) and help "filters" at the prompt.
local M = {}

--- One line per method of a listing, and for its options on_page and
--- concurrency and its behaviour after a failed page, for help(listing).
M.help = {
  next = "listing:next() -> the next item | nil at the end (for item in listing do ... end calls it)",
  next_page = "listing:next_page() -> {items=, offset=, total=} | nil: the rest of the page held, or the next page",
  pages = "listing:pages() -> iterator over pages {items=, offset= (server offset of items[1]), total= (X-Total-Count, nil when unknown)}",
  collect = "listing:collect() -> list of every item not yet read (all or nothing: a failure puts the listing back)",
  count = "listing:count() -> how many items the whole listing holds (X-Total-Count; the listing does not move)",
  total = "listing:total() -> the latest X-Total-Count the server gave | nil before the first page",
  read = "listing:read() -> how many items were handed out so far",
  peek = "listing:peek(n) -> its first n items, its total | nil: fetched apart, the listing does not move",
  close = "listing:close(): lets go of the page held (a break out of a for does it)",
  on_page = "on_page = function(info): an option of every listing, called after each page with {offset=, count=, read=, total=}",
  concurrency = "concurrency = 4: an option of every listing, the pages kept in flight ahead of the reader (1: one page ahead, and no count asked)",
  resume = "a page that fails raises its error with offset= and read=; iterate the same listing again to fetch that page again and go on",
  filters = 'filters = \'name sw "Fin"\': help "filters" lists the fields and operators of each listing',
}

--- The fields each listing filters and sorts on, as ISC's API reference
--- lists them; anything else is answered 400 Bad Request.
M.filters = [[
Filters: 'field op value', joined with and, or, not and parentheses; strings in
double quotes; operators lowercase (eq, sw, co, in, gt, lt, ge, le).
  c.roles:list{filters=, sorters=}     GET /roles
    id eq,in   name eq,sw   created gt,ge,le   modified lt,ge,le   owner.id eq,in
    requestable eq   dimensional eq
    sorters: name, created, modified (a leading - sorts descending: "-modified")
  c.roles:search{filters=, sorters=}   POST /roles/filter (and bulk_update_metadata{filters=})
    id eq,in   name eq,sw   created gt,lt,ge,le   modified gt,lt,ge,le   owner.id eq,in
    requestable eq   dimensional eq
    sorters: name, created, modified
  c.roles:assigned_identities(id, {filters=, sorters=})
    id eq,in   aliasName eq,sw   email eq,sw   name eq,sw,co
    sorters: id, name, aliasName, email
  c.roles:entitlements(id, {filters=, sorters=})
    id eq,in   name eq,sw   attribute eq,sw   value eq,sw   created gt,lt,ge,le
    modified gt,lt,ge,le   owner.id eq,in   source.id eq,in
    sorters: name, attribute, value, created, modified
Example: c.roles:list{ filters = 'requestable eq true and name sw "Fin"', sorters = "-modified" }]]

return M
