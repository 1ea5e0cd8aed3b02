# CTest registrations for the input hardening tests (issue: hostile input).
# Config integers are range-checked, not truncated (2^32 + 2 epochs used to run 2 epochs).
add_test(NAME cli_input_epochs_out_of_range COMMAND ${EXPECT} nonzero
  "key 'epochs': 4294967298 is out of range: must be in \\[1, 1000000\\]"
  ${OSPREY_BIN} train --set epochs=4294967298)
add_test(NAME cli_input_batch_size_out_of_range COMMAND ${EXPECT} nonzero
  "key 'batch_size': 4294967304 is out of range"
  ${OSPREY_BIN} train --set batch_size=4294967304)
# A run name of ".." used to write the run into the parent of runs_dir.
add_test(NAME cli_input_run_name_dotdot COMMAND ${EXPECT} nonzero
  "config: name '\\.\\.' must be one safe path component"
  sh -c "mkdir runs && ${OSPREY_BIN} train ${TINY_FASHION} --set epochs=1 --set runs_dir=runs/r --set name=.. || [ -n \"$(ls -A runs)\" ]")
# A config nested 100000 levels deep used to overflow the stack (exit 139).
add_test(NAME cli_input_deep_config COMMAND ${EXPECT} nonzero
  "config file 'deep.json': JSON nested deeper than 64 levels"
  sh -c "python3 -c 'open(\"deep.json\", \"w\").write(\"{\\\"augment\\\": \" + \"[\" * 100000 + \"]\" * 100000 + \"}\")' && ${OSPREY_BIN} train --config deep.json")
add_test(NAME cli_input_deep_set COMMAND ${EXPECT} nonzero
  "--set augment=\\[\\[\\[.*JSON nested deeper than 64 levels"
  sh -c "${OSPREY_BIN} train --set augment=$(python3 -c 'print(\"[\" * 50000 + \"]\" * 50000)')")
# Non-numeric reference metadata used to fail with the bare message "stoi".
add_test(NAME cli_input_verify_bad_classes COMMAND ${EXPECT} nonzero
  "reference 'r.ref.safetensors': metadata 'classes': 'ten' is not an integer"
  sh -c "python3 -c '
import json, struct
h = json.dumps({\"__metadata__\": {\"model\": \"simple_cnn\", \"classes\": \"ten\"},
                \"input\": {\"dtype\": \"F32\", \"shape\": [1, 1, 28, 28], \"data_offsets\": [0, 3136]}}).encode()
open(\"r.ref.safetensors\", \"wb\").write(struct.pack(\"<Q\", len(h)) + h + bytes(3136))
open(\"r.params.safetensors\", \"wb\").write(struct.pack(\"<Q\", 2) + b\"{}\")
' && ${OSPREY_BIN} verify r")
# A [2^31, 2^31, 1, 1] F32 tensor with data_offsets [0, 0]: its byte count wrapped to 0, and verify
# then died with "cannot create std::vector larger than max_size()" and no file name.
add_test(NAME cli_input_verify_wrapping_shape COMMAND ${EXPECT} nonzero
  "safetensors file 'w.ref.safetensors': tensor 'input' of shape \\[2147483648, 2147483648, 1, 1\\]: size .* overflows"
  sh -c "python3 -c '
import json, struct
h = json.dumps({\"__metadata__\": {\"model\": \"simple_cnn\", \"classes\": \"10\"},
                \"input\": {\"dtype\": \"F32\", \"shape\": [2**31, 2**31, 1, 1], \"data_offsets\": [0, 0]}}).encode()
open(\"w.ref.safetensors\", \"wb\").write(struct.pack(\"<Q\", len(h)) + h)
open(\"w.params.safetensors\", \"wb\").write(struct.pack(\"<Q\", 2) + b\"{}\")
' && ${OSPREY_BIN} verify w")
set_tests_properties(cli_input_epochs_out_of_range cli_input_batch_size_out_of_range
  cli_input_run_name_dotdot cli_input_deep_config cli_input_deep_set cli_input_verify_bad_classes
  cli_input_verify_wrapping_shape PROPERTIES TIMEOUT 60)
# Error messages quote paths and file contents: a control sequence in them (here an OSC that
# would set the terminal's title) reaches the terminal escaped, never raw.
add_test(NAME cli_input_error_escapes_control_bytes COMMAND ${EXPECT} 0 "^escaped$"
  bash -c "out=$(${OSPREY_BIN} train --set data_dir=\"$(printf '/no\\033]0;x\\007')\" 2>&1); echo \"$out\"; [[ $out != *$'\\e'* ]] && grep -qF '/no\\x1b]0;x\\x07' <<<\"$out\" && echo escaped")
