# CTest registrations for the image hardening tests (issue: hostile input).
# The tests encode their PNGs and JPEGs (tests/image_support.h; test_data also patches them into
# hostile ones) with the libraries data/image.cpp decodes with; zlib computes the CRCs of
# hand-made PNG chunks.
target_link_libraries(test_data PRIVATE PNG::PNG osprey_turbojpeg ZLIB::ZLIB)
target_link_libraries(test_app PRIVATE PNG::PNG osprey_turbojpeg)
