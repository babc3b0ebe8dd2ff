# Writes OUT: a C file with every file of DIR matching PATTERN (sorted by name) as a byte array,
# and a table of {name, text} of type `struct STRUCT` named TABLE with its length in COUNT,
# declared in HEADER; NAME is the file's name (KEEP=NAME) or without its extension (KEEP=NAME_WE).
# Used for the migrations (core/store/migrate.h) and the cluster's Lua scripts
# (core/cluster/cluster_lua.h), so that a node never depends on its working directory.
file(GLOB FILES ${DIR}/${PATTERN})
list(SORT FILES)
set(body "/* Generated from ${DIR} by cmake/embed_files.cmake. Do not edit. */\n#include \"${HEADER}\"\n\n")
set(table "const struct ${STRUCT} ${TABLE}[] = {\n")
set(i 0)
foreach(f ${FILES})
  get_filename_component(name ${f} ${KEEP})
  file(READ ${f} hex HEX)
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
  string(APPEND body "static const char f${i}[] = {${bytes}0x00};\n")
  string(APPEND table "  {\"${name}\", f${i}},\n")
  math(EXPR i "${i} + 1")
endforeach()
string(APPEND table "};\nconst int ${COUNT} = ${i};\n")
file(WRITE ${OUT} "${body}\n${table}")
