#include <memory>

#include "tools/cli/commands.h"
#include "tools/data_get.h"

namespace osprey::cli {

void add_data_get_command(CLI::App* data, Commands& commands) {
  auto* get = data->add_subcommand(
      "get",
      "Download a dataset (cifar10, fashion-mnist, mnist, tmnist), check it against the "
      "published checksums and unpack it where its reader looks. Resumes a broken download; "
      "proxies from http_proxy, https_proxy, no_proxy.");
  auto o = std::make_shared<tools::DataGetOptions>();
  get->add_option("name", o->name, "cifar10, fashion-mnist, mnist or tmnist")->required();
  get->add_option("--dir", o->dir, "The folder to put it in (made if missing)")
      ->capture_default_str();
  get->add_option("--url", o->url,
                  "A mirror: the file's URL, or for several files the folder URL their names "
                  "are appended to (tmnist has no default: give this or --from)");
  get->add_option("--from", o->from,
                  "An already-downloaded file (or a folder holding the files): checked and "
                  "unpacked, never changed");
  get->add_option("--sha256", o->sha256,
                  "HEX or FILE=HEX: check against this SHA-256 instead of the known checksums "
                  "(repeatable)")
      ->allow_extra_args(false);
  commands.push_back({get, [o] {
                        tools::data_get(*o);
                        return 0;
                      }});
}

}  // namespace osprey::cli
