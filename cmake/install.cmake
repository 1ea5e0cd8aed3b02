# `cmake --install BUILD --prefix P`: the headers under P/include/osprey, the static libraries
# (position-independent, so they link into shared objects too) and the osprey binary, a CMake
# package (find_package(Osprey) -> Osprey::osprey) and osprey.pc for pkg-config.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

# The whole library in one target: the application layer links every other.
add_library(osprey_all INTERFACE)
target_link_libraries(osprey_all INTERFACE osprey_app)
set_target_properties(osprey_all PROPERTIES EXPORT_NAME osprey)
add_library(Osprey::osprey ALIAS osprey_all)

set(OSPREY_LIBRARIES osprey_app osprey_models osprey_data osprey_dist osprey_interop osprey_engine)
if(OSPREY_CUDA)
  list(APPEND OSPREY_LIBRARIES osprey_kernels_cuda)
endif()
list(APPEND OSPREY_LIBRARIES osprey_kernels_cpu)
foreach(lib ${OSPREY_LIBRARIES})
  string(REPLACE "osprey_" "" name ${lib})
  set_target_properties(${lib} PROPERTIES EXPORT_NAME ${name})
endforeach()

install(TARGETS osprey_all ${OSPREY_LIBRARIES} EXPORT OspreyTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(TARGETS osprey RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
foreach(dir kernels engine models data dist interop tools)
  install(DIRECTORY ${dir}/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/osprey/${dir}
    FILES_MATCHING PATTERN "*.h")
endforeach()

set(cmake_dir ${CMAKE_INSTALL_LIBDIR}/cmake/Osprey)
install(EXPORT OspreyTargets NAMESPACE Osprey:: DESTINATION ${cmake_dir})
configure_package_config_file(cmake/OspreyConfig.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/OspreyConfig.cmake INSTALL_DESTINATION ${cmake_dir})
# 0.x: a minor version may change the API.
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/OspreyConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/OspreyConfig.cmake
  ${CMAKE_CURRENT_BINARY_DIR}/OspreyConfigVersion.cmake cmake/OspreyLibraries.cmake
  DESTINATION ${cmake_dir})

# pkg-config: static libraries, so Libs lists every dependency; paths relative to the .pc file,
# so the prefix can move.
set(pc_cflags "-fopenmp -DONNX_ML=1 -DONNX_NAMESPACE=onnx")
set(pc_libs "")
foreach(lib ${OSPREY_LIBRARIES})
  string(APPEND pc_libs " -l${lib}")
endforeach()
string(APPEND pc_libs " -ldnnl -lturbojpeg -lzip -lonnx_proto -lprotobuf")
string(APPEND pc_libs " -lcurl -larchive -lcrypto")
string(APPEND pc_libs " -lfreetype")  # osprey_data renders typefaces with FreeType
if(OSPREY_CUDA)
  string(APPEND pc_cflags " -DOSPREY_WITH_CUDA -I${CUDAToolkit_INCLUDE_DIRS}")
  # The toolkit's folder is not on the loader's path everywhere: programs record it (rpath).
  string(APPEND pc_libs " -L${CUDAToolkit_LIBRARY_DIR} -Wl,-rpath,${CUDAToolkit_LIBRARY_DIR}"
    " -lcudart -lcublasLt")
endif()
if(TARGET osprey_nccl)
  get_filename_component(nccl_dir ${NCCL_LIBRARY} DIRECTORY)
  string(APPEND pc_libs " ${NCCL_LIBRARY} -Wl,-rpath,${nccl_dir}")
endif()
if(OSPREY_MPI)
  string(JOIN " " mpi_libs ${MPI_CXX_LIBRARIES})
  string(APPEND pc_libs " ${mpi_libs}")
endif()
string(APPEND pc_libs " -fopenmp -pthread")
file(RELATIVE_PATH pc_prefix /root/${CMAKE_INSTALL_LIBDIR}/pkgconfig /root)
string(REGEX REPLACE "/$" "" pc_prefix "${pc_prefix}")
configure_file(cmake/osprey.pc.in ${CMAKE_CURRENT_BINARY_DIR}/osprey.pc @ONLY)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/osprey.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
