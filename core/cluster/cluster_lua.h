/* The cluster's Lua scripts (core/cluster/lua/NAME.lua), compiled into the binary by
 * cmake/embed_files.cmake: name (the file name without .lua) and text. Read-only, any thread. */
#ifndef COBROWSE_CORE_CLUSTER_CLUSTER_LUA_H
#define COBROWSE_CORE_CLUSTER_CLUSTER_LUA_H

struct cluster_lua {
    const char *name;
    const char *text;
};

extern const struct cluster_lua cluster_lua_files[];
extern const int cluster_lua_count;

#endif
