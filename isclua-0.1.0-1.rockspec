-- The isc module for a stock Lua 5.4: `luarocks make` builds isc.core and
-- isc.sim.server with the Makefile (no isclua host, no bootstrap) and
-- installs them with the Lua files of lua/isc/.
rockspec_format = "3.0"
package = "isclua"
version = "0.1.0-1"
source = {
  url = "git+https://github.com/isclua/isclua.git",
  tag = "v0.1.0",
}
description = {
  summary = "SailPoint Identity Security Cloud (Roles, Role Propagation) for Lua 5.4",
  detailed = [[
require "isc": a client of the ISC REST API with lazy listings, a native
wait for role propagations, OAuth2 tokens, retries that honour Retry-After,
structured errors, and a simulated tenant to rehearse scripts on.]],
  license = "MIT",
  homepage = "https://github.com/isclua/isclua",
}
dependencies = {
  "lua >= 5.4, < 5.5",
}
external_dependencies = {
  CURL = { library = "curl" }, -- Debian keeps curl.h in a multiarch directory luarocks 3.8 does not search
}
build = {
  type = "make",
  build_target = "modules",
  build_variables = {
    BUILD = "build-rock",
    BOOTSTRAP = "",
    LUA_INCDIR = "$(LUA_INCDIR)",
  },
  install_target = "install-modules",
  install_variables = {
    BUILD = "build-rock",
    BOOTSTRAP = "",
    LUA_LIB = "$(LIBDIR)",
    LUA_SHARE = "$(LUADIR)",
  },
}
