# osprey data typefaces: a dataset of the DejaVu fonts (fonts-dejavu-core, in
# tools/install_deps.sh) that configs/typefaces_simple_cnn.json trains on from its folder; no
# fonts, a folder that cannot be made and a bad fraction each fail with one clear message.
set(DEJAVU_DIR /usr/share/fonts/truetype/dejavu)
if(EXISTS ${DEJAVU_DIR}/DejaVuSans.ttf)
  # At 0.5, DejaVuSerif goes to test and DejaVuSans to train.
  add_test(NAME cli_data_typefaces_renders_and_trains COMMAND ${EXPECT} 0
    "^epoch  1/1  train_loss [0-9.]+  test_loss [0-9.]+  test_acc [0-9.]+%"
    sh -c "${OSPREY_BIN} data typefaces --out tf --fonts-dir ${DEJAVU_DIR} --test-fraction 0.5 \
&& grep -q '^DejaVuSerif,DejaVu Serif,Book,test,' tf/fonts.csv \
&& grep -q '^DejaVuSans,DejaVu Sans,Book,train,' tf/fonts.csv && test -s tf/sample.png \
&& ${OSPREY_BIN} train --config ${PROJECT_SOURCE_DIR}/configs/typefaces_simple_cnn.json \
--set data_dir=tf --set epochs=1 --set threads=1 --set progress=false --set runs_dir=runs")
  set_tests_properties(cli_data_typefaces_renders_and_trains PROPERTIES TIMEOUT 120)
  add_test(NAME cli_data_typefaces_split_needs_both_sides COMMAND ${EXPECT} 1
    "osprey: error: the font-level split of [0-9]+ fonts leaves the test split empty"
    ${OSPREY_BIN} data typefaces --out tf --fonts-dir ${DEJAVU_DIR} --test-fraction 0)
  add_test(NAME cli_data_typefaces_unwritable_out COMMAND ${EXPECT} 1
    "osprey: error: cannot create the output directory '/dev/null/tf'"
    ${OSPREY_BIN} data typefaces --out /dev/null/tf --fonts-dir ${DEJAVU_DIR})
endif()
add_test(NAME cli_data_typefaces_without_fonts COMMAND ${EXPECT} 1
  "^osprey: error: no usable fonts under /nonexistent/fonts \\(0 faces skipped"
  sh -c "${OSPREY_BIN} data typefaces --out tf --fonts-dir /nonexistent/fonts; s=$?; \
test ! -e tf && exit $s")
add_test(NAME cli_data_typefaces_bad_fraction COMMAND ${EXPECT} 2
  "data typefaces: --test-fraction: Value 2 not in range 0[.0]* to 1"
  ${OSPREY_BIN} data typefaces --test-fraction 2)
