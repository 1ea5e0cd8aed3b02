# System libraries Osprey links that ship no CMake package, as IMPORTED targets. Used by the
# build and, installed, by OspreyConfig.cmake, so a consumer finds them again on its machine.

# osprey_library(TARGET HEADER LIBRARY PACKAGE): TARGET for a header and library on the system
# paths, or a fatal error naming the Debian package that has them.
function(osprey_library target header library package)
  if(TARGET ${target})
    return()
  endif()
  string(TOUPPER ${target} var)
  find_path(${var}_INCLUDE_DIR ${header})
  find_library(${var}_LIBRARY ${library})
  if(NOT ${var}_INCLUDE_DIR OR NOT ${var}_LIBRARY)
    message(FATAL_ERROR "${header} / lib${library} not found: apt-get install ${package}")
  endif()
  add_library(${target} UNKNOWN IMPORTED GLOBAL)
  set_target_properties(${target} PROPERTIES IMPORTED_LOCATION "${${var}_LIBRARY}"
    INTERFACE_INCLUDE_DIRECTORIES "${${var}_INCLUDE_DIR}")
endfunction()

# NCCL ships with the CUDA toolkit on these machines, without a CMake package: osprey_nccl,
# when found.
function(osprey_find_nccl)
  if(TARGET osprey_nccl)
    return()
  endif()
  find_library(NCCL_LIBRARY nccl HINTS ${CUDAToolkit_LIBRARY_DIR} /usr/local/cuda/lib64 /usr/local/cuda/lib)
  find_path(NCCL_INCLUDE_DIR nccl.h HINTS ${CUDAToolkit_INCLUDE_DIRS})
  if(NCCL_LIBRARY AND NCCL_INCLUDE_DIR)
    add_library(osprey_nccl UNKNOWN IMPORTED GLOBAL)
    set_target_properties(osprey_nccl PROPERTIES IMPORTED_LOCATION "${NCCL_LIBRARY}"
      INTERFACE_INCLUDE_DIRECTORIES "${NCCL_INCLUDE_DIR}")
  endif()
endfunction()

# osprey_public_includes(TARGET LAYER...): TARGET's include path when building is a folder of
# links to the LAYERs it may use (its own and those below it), so an include that points the
# wrong way (engine including models/..., kernels including engine/...) fails to compile.
# Installed, the headers are under include/osprey (for "engine/tensor.h") and include (for
# <osprey/engine/tensor.h>).
function(osprey_public_includes target)
  set(view ${PROJECT_BINARY_DIR}/layers/${target})
  file(MAKE_DIRECTORY ${view})
  foreach(layer ${ARGN})
    if(NOT EXISTS ${view}/${layer})
      file(CREATE_LINK ${PROJECT_SOURCE_DIR}/${layer} ${view}/${layer} SYMBOLIC)
    endif()
  endforeach()
  target_include_directories(${target} PUBLIC $<BUILD_INTERFACE:${view}>
    $<INSTALL_INTERFACE:include/osprey> $<INSTALL_INTERFACE:include>)
endfunction()
