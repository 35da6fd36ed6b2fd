# The libraries timed beside the ladders (the peers) are optional, and an
# optional peer must never stop configure. So a peer is not found through its
# own CMake package, whose config file may itself require packages that are
# not installed (Debian's oneDNN 2.6 config asks for OpenCL, REQUIRED, which
# its package only recommends). It is found by its header and its library,
# then proved by building and running a program that calls it. A peer that
# fails any step is reported as "peer NAME not found (reason)", and the build
# goes on without it; the reason also reaches the benchmark JSON's context.
#
#   locality_find_peer(NAME HEADER <file> LIBRARY <name>... [HINTS <dir>...]
#                      [PATH_SUFFIXES <dir>...] PROBE <C++ source of main()>)
#
# HINTS are searched first (the PyPI peers live in the project's virtual
# environment, LOCALITY_VENV); LIBRARY may list several names, the first
# found wins.
#
# Sets, in the caller's scope: LOCALITY_PEER_<NAME>_FOUND (ON or OFF),
# LOCALITY_PEER_<NAME>_INCLUDE_DIR, LOCALITY_PEER_<NAME>_LIBRARY and
# LOCALITY_PEER_<NAME>_REASON (why not, when not found). The cache option
# LOCALITY_PEER_<NAME> (default ON) turns a peer off.
function(locality_find_peer name)
  cmake_parse_arguments(PARSE_ARGV 1 arg "" "HEADER;PROBE" "LIBRARY;HINTS;PATH_SUFFIXES")
  string(TOUPPER "${name}" upper)
  option(LOCALITY_PEER_${upper} "Time the ${name} peer beside the ladders, if it is found" ON)
  set(found OFF)
  set(reason "")
  set(include_var LOCALITY_PEER_${upper}_INCLUDE_DIR)
  set(library_var LOCALITY_PEER_${upper}_LIBRARY)
  if(NOT LOCALITY_PEER_${upper})
    set(reason "turned off: LOCALITY_PEER_${upper}=OFF")
  else()
    find_path(${include_var} ${arg_HEADER} HINTS ${arg_HINTS} PATH_SUFFIXES ${arg_PATH_SUFFIXES})
    find_library(${library_var} NAMES ${arg_LIBRARY} HINTS ${arg_HINTS}
                 PATH_SUFFIXES ${arg_PATH_SUFFIXES})
    if(NOT ${include_var})
      set(reason "no ${arg_HEADER}")
    elseif(NOT ${library_var})
      list(GET arg_LIBRARY 0 first_name)
      set(reason "no lib${first_name}")
    else()
      set(dir "${CMAKE_CURRENT_BINARY_DIR}/peer_probe_${name}")
      file(WRITE "${dir}/probe.cpp" "${arg_PROBE}\n")
      try_run(${name}_probe_exit ${name}_probe_builds "${dir}/build" "${dir}/probe.cpp"
              CMAKE_FLAGS "-DINCLUDE_DIRECTORIES=${${include_var}}"
              LINK_LIBRARIES "${${library_var}}"
              COMPILE_OUTPUT_VARIABLE compile_output
              RUN_OUTPUT_VARIABLE run_output)
      if(NOT ${name}_probe_builds)
        string(REGEX MATCH "[^\n]*(error|undefined reference)[^\n]*" first_error "${compile_output}")
        string(STRIP "${first_error}" first_error)
        set(reason "a program calling it does not build with ${${library_var}}: ${first_error}")
      elseif(NOT ${name}_probe_exit EQUAL 0)
        string(STRIP "${run_output}" run_output)
        set(reason "a program calling it exits ${${name}_probe_exit}: ${run_output}")
      else()
        set(found ON)
      endif()
    endif()
  endif()
  # The reason travels as a C string literal: no quotes or backslashes in it.
  string(REPLACE "\"" "'" reason "${reason}")
  string(REPLACE "\\" "/" reason "${reason}")
  if(found)
    message(STATUS "locality: peer ${name} found (${${library_var}})")
  else()
    message(STATUS "locality: peer ${name} not found (${reason})")
  endif()
  set(LOCALITY_PEER_${upper}_FOUND ${found} PARENT_SCOPE)
  set(LOCALITY_PEER_${upper}_REASON "${reason}" PARENT_SCOPE)
  set(${include_var} "${${include_var}}" PARENT_SCOPE)
  set(${library_var} "${${library_var}}" PARENT_SCOPE)
endfunction()

# locality_link_peer(<target> NAME [LOAD]): links a found peer into the
# target and defines LOCALITY_HAVE_<NAME> (1 or 0) and, when not found,
# LOCALITY_<NAME>_MISSING, the reason as a string. With LOAD the library is
# not linked but named in LOCALITY_<NAME>_LIBRARY, for dlopen (a BLAS whose
# exported names would clash with another's).
function(locality_link_peer target name)
  cmake_parse_arguments(PARSE_ARGV 2 arg "LOAD" "" "")
  string(TOUPPER "${name}" upper)
  if(LOCALITY_PEER_${upper}_FOUND)
    if(arg_LOAD)
      target_link_libraries(${target} PRIVATE ${CMAKE_DL_LIBS})
      target_compile_definitions(${target} PRIVATE
        "LOCALITY_${upper}_LIBRARY=\"${LOCALITY_PEER_${upper}_LIBRARY}\"")
    else()
      target_include_directories(${target} PRIVATE "${LOCALITY_PEER_${upper}_INCLUDE_DIR}")
      target_link_libraries(${target} PRIVATE "${LOCALITY_PEER_${upper}_LIBRARY}")
    endif()
    target_compile_definitions(${target} PRIVATE LOCALITY_HAVE_${upper}=1)
  else()
    target_compile_definitions(${target} PRIVATE LOCALITY_HAVE_${upper}=0
      "LOCALITY_${upper}_MISSING=\"${LOCALITY_PEER_${upper}_REASON}\"")
  endif()
endfunction()
