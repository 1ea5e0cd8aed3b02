#include <cstdio>
#include <memory>

#include "engine/pth.h"
#include "tools/cli/commands.h"

namespace osprey::cli {

void add_convert_command(CLI::App& app, Commands& commands) {
  auto* convert = app.add_subcommand(
      "convert",
      "Write the tensors of a PyTorch .pth state_dict (or a safetensors file) as safetensors: "
      "the names the model has (no 'module.' / '_orig_mod.'), the dtypes kept. Atomic.");
  auto in = std::make_shared<std::string>(), out = std::make_shared<std::string>();
  convert->add_option("in", *in, "Input: a .pth written by torch.save, or .safetensors")
      ->required();
  convert->add_option("out", *out, "Output .safetensors")->required();
  commands.push_back({convert, [in, out] {
                        const SafeTensorsFile f = read_tensor_file(*in);
                        SafeTensorsWriter w;
                        for (const std::string& name : f.names()) w.add(name, f.entry(name));
                        w.write(*out);
                        std::printf("wrote %zu tensors to %s\n", f.names().size(), out->c_str());
                        return 0;
                      }});
}

}  // namespace osprey::cli
