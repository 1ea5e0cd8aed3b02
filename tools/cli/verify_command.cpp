#include "tools/cli/commands.h"
#include "tools/verify.h"

namespace osprey::cli {

void add_verify_command(CLI::App& app, Commands& commands) {
  auto* verify = app.add_subcommand(
      "verify",
      "Compare the engine against a PyTorch reference: PREFIX.params.safetensors (a "
      "state_dict) and PREFIX.ref.safetensors. Verdict PASS, PASS (gradients within fp32 "
      "chance) or FAIL; exit 0 for both PASS forms.");
  auto prefix = std::make_shared<std::string>();
  auto vo = std::make_shared<tools::VerifyOptions>();
  verify
      ->add_option("prefix", *prefix, "Reference prefix, e.g. tests/golden/simple_cnn_c1_k10_b4_28")
      ->required();
  verify->add_option("--params", vo->params_path,
                     "The weights: a state_dict as a PyTorch .pth or safetensors (default: "
                     "PREFIX.params.safetensors)");
  verify->add_option("--model", vo->model, "Model name (default: the reference's metadata)");
  verify->add_option("--classes", vo->classes, "Class count (default: metadata)");
  verify->add_option("--width", vo->width, "Width multiplier (default: metadata)");
  verify->add_option("--threads", vo->threads, "CPU threads (0 = all cores)");
  verify->add_option("--device", vo->device, "cpu, cuda or auto")->capture_default_str();
  verify
      ->add_option("--dtype", vo->dtype,
                   "Activations: f32, or bf16 (mixed precision, bf16 tolerances)")
      ->capture_default_str();
  commands.push_back({verify, [prefix, vo] {
                        tools::VerifyOptions o = tools::verify_options_from_prefix(*prefix);
                        if (!vo->params_path.empty()) o.params_path = vo->params_path;
                        o.model = vo->model, o.classes = vo->classes, o.width = vo->width;
                        o.threads = vo->threads, o.device = vo->device, o.dtype = vo->dtype;
                        return tools::print_verify_report(tools::run_verify(o));
                      }});
}

}  // namespace osprey::cli
