# CTest registrations for the command line that helps: usage, help, suggestions and exit codes
# (0 ok, 1 a run/file/data error, 2 a usage error; CLI11's own codes 105-109 never leak).
add_test(NAME cli_no_command_prints_usage COMMAND ${EXPECT} 2 "^  train +Train a model$"
  ${OSPREY_BIN})
add_test(NAME cli_help_is_dash_dash_help COMMAND ${EXPECT} 0 "^Exit codes: 0 success; 1 error"
  ${OSPREY_BIN} help)
add_test(NAME cli_help_train_shows_the_key_table COMMAND ${EXPECT} 0
  "^optimizer +string +\"adam\" +adam\\|adamw\\|sgd$" ${OSPREY_BIN} help train)
add_test(NAME cli_help_bench_train COMMAND ${EXPECT} 0 "^Usage: osprey bench train"
  ${OSPREY_BIN} help bench train)
add_test(NAME cli_help_unknown_command COMMAND ${EXPECT} 2
  "^osprey: error: unknown command 'trian'; did you mean 'train'\\?$" ${OSPREY_BIN} help trian)
add_test(NAME cli_misspelt_command COMMAND ${EXPECT} 2
  "^osprey: error: unknown command 'trian'; did you mean 'train'\\?$" ${OSPREY_BIN} trian)
add_test(NAME cli_bench_without_command COMMAND ${EXPECT} 2 "^  inference +Time eval-mode forwards"
  ${OSPREY_BIN} bench)
add_test(NAME cli_misspelt_option COMMAND ${EXPECT} 2
  "train: unknown option '--confg'; did you mean '--config'\\?" ${OSPREY_BIN} train --confg x.json)
add_test(NAME cli_option_that_is_a_config_key COMMAND ${EXPECT} 2
  "train: unknown option '--epochs'; did you mean '--set epochs=1'\\?" ${OSPREY_BIN} train --epochs 1)
add_test(NAME cli_misspelt_config_key COMMAND ${EXPECT} 2
  "unknown config key 'epoch' \\(did you mean 'epochs'\\?\\); osprey config --list"
  ${OSPREY_BIN} train --set epoch=1)
add_test(NAME cli_misspelt_enum_value COMMAND ${EXPECT} 2
  "key 'optimizer': 'adm' is not one of adam, adamw, sgd \\(did you mean 'adam'\\?\\)"
  ${OSPREY_BIN} train --set optimizer=adm)
add_test(NAME cli_invalid_value_is_a_usage_error COMMAND ${EXPECT} 2 "config: lr must be > 0"
  ${OSPREY_BIN} train --set lr=-1)
add_test(NAME cli_cli11_conversion_error COMMAND ${EXPECT} 2
  "^osprey: error: predict: Could not convert: --top-k = abc"
  ${OSPREY_BIN} predict --top-k abc --checkpoint run image.png)
add_test(NAME cli_cli11_required_error COMMAND ${EXPECT} 2 "^osprey: error: verify: prefix is required"
  ${OSPREY_BIN} verify)
add_test(NAME cli_missing_data_is_a_run_error COMMAND ${EXPECT} 1 "/nonexistent/osprey-data"
  ${OSPREY_BIN} train --set data_dir=/nonexistent/osprey-data)
add_test(NAME cli_config_list COMMAND ${EXPECT} 0 "^schedule +string +\"constant\" +constant\\|step\\|cosine\\|onecycle$"
  ${OSPREY_BIN} config --list)
add_test(NAME cli_config_without_flag COMMAND ${EXPECT} 2 "give --list .* or --show"
  ${OSPREY_BIN} config)
add_test(NAME cli_config_show_exact_floats COMMAND ${EXPECT} 0 "^  \"lr\": 0.001,$"
  ${OSPREY_BIN} config --show --set lr=0.001)
add_test(NAME cli_config_file_paths_relative_to_the_file COMMAND ${EXPECT} 0
  "\"data_dir\": \"/.*/sub/data\",.*\"runs_dir\": \"out\","
  sh -c "mkdir sub && printf '{\"data_dir\": \"data\", \"runs_dir\": \"out\"}' > sub/c.json && ${OSPREY_BIN} config --show --config sub/c.json | tr -d '\\n'")
add_test(NAME cli_config_file_with_provenance COMMAND ${EXPECT} 0 "\"epochs\": 3,"
  sh -c "printf '{\"epochs\": 3, \"provenance\": {\"commit\": \"abc\"}}' > c.json && ${OSPREY_BIN} config --show --config c.json")
