# CTest registrations for `osprey plot` and the training curves (the PNG's size, pixels and axes
# are checked by test_app's [plot] cases, tests/test_app_plot.cpp).
set(PLOT_METRICS "{\"epoch\":1,\"train_loss\":2.1,\"test_loss\":1.9,\"test_acc\":41.5}\\n{\"epoch\":2,\"train_loss\":1.2,\"test_loss\":1.1,\"test_acc\":63.0}\\n{\"epoch\":3,\"train_lo")
# The PNG's signature and its IHDR's width x height.
set(PNG_SIZE "echo $(head -c 4 PNG_FILE | tail -c 3) $(od -An -tu1 -j16 -N8 PNG_FILE | awk '{ print $3 * 256 + $4, \"x\", $7 * 256 + $8 }')")
string(REPLACE PNG_FILE c.png PLOT_SIZE "${PNG_SIZE}")
add_test(NAME cli_plot_writes_a_png COMMAND ${EXPECT} 0 "^PNG 1200 x 500$"
  sh -c "mkdir run && printf '${PLOT_METRICS}' > run/metrics.jsonl && ${OSPREY_BIN} plot run -o c.png && ${PLOT_SIZE}")
add_test(NAME cli_plot_names_the_missing_run COMMAND ${EXPECT} nonzero
  "osprey: error: run 'nothing': no metrics.jsonl" ${OSPREY_BIN} plot nothing)
string(REPLACE PNG_FILE runs/*/curves.png CURVES_SIZE "${PNG_SIZE}")
add_test(NAME cli_train_draws_curves COMMAND ${EXPECT} 0 "^PNG 1200 x 500$"
  sh -c "${OSPREY_BIN} train ${TINY_FASHION} --set epochs=2 && ${CURVES_SIZE}")
set_tests_properties(cli_train_draws_curves PROPERTIES TIMEOUT 120)
