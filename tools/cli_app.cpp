#include "tools/cli_app.h"

#include <algorithm>
#include <cstdio>

#include "engine/parse.h"
#include "tools/cli_suggest.h"
#include "tools/config.h"

namespace osprey::tools {
namespace {

// "osprey bench train": the command path of a (sub)command.
std::string command_path(const CLI::App* app) {
  std::string path = app->get_name();
  for (const CLI::App* p = app->get_parent(); p; p = p->get_parent())
    path = p->get_name() + " " + path;
  return path;
}

// What starts a message about `app` after "osprey: error: ": "bench train: ", or "" at the top.
std::string where(const CLI::App& app) {
  return app.get_parent() ? command_path(&app).substr(command_path(&app).find(' ') + 1) + ": " : "";
}

std::vector<std::string> subcommand_names(const CLI::App& app) {
  std::vector<std::string> names;
  for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; }))
    names.push_back(sub->get_name());
  return names;
}

CLI::App* find_subcommand(const CLI::App& app, const std::string& name) {
  for (CLI::App* sub : const_cast<CLI::App&>(app).get_subcommands([](CLI::App*) { return true; }))
    if (sub->get_name() == name) return sub;
  return nullptr;
}

std::vector<std::string> option_names(const CLI::App& app) {
  std::vector<std::string> names;
  for (const CLI::Option* opt : app.get_options()) {
    for (const auto& l : opt->get_lnames()) names.push_back("--" + l);
    for (const auto& s : opt->get_snames()) names.push_back("-" + s);
  }
  return names;
}

void allow_extras_everywhere(CLI::App& app) {
  app.allow_extras();
  for (CLI::App* sub : app.get_subcommands([](CLI::App*) { return true; }))
    allow_extras_everywhere(*sub);
}

[[noreturn]] void unknown_command(const CLI::App& app, const std::string& word) {
  const std::string best = closest_match(word, subcommand_names(app));
  usage_fail(where(app), "unknown command '", printable(word), "'; ",
             best.empty() ? "'" + command_path(&app) + " --help' lists the commands"
                          : "did you mean '" + best + "'?");
}

// An option `app` does not have. A config key written as an option gets its --set form.
[[noreturn]] void unknown_option(const CLI::App& app, const std::vector<std::string>& extras) {
  const std::string& arg = extras[0];
  const size_t eq = arg.find('=');
  const std::string option = arg.substr(0, eq);
  std::string value = "VALUE";
  if (eq != std::string::npos)
    value = arg.substr(eq + 1);
  else if (extras.size() > 1 && extras[1].rfind('-', 0) != 0)
    value = extras[1];
  const std::string word = option.substr(option.find_first_not_of('-'));
  const std::vector<std::string> options = option_names(app), keys = config_keys();
  const bool has_set = std::count(options.begin(), options.end(), "--set") > 0;
  std::string hint;
  if (has_set && std::count(keys.begin(), keys.end(), word)) hint = "--set " + word + "=" + value;
  if (hint.empty()) hint = closest_match(option, options);
  if (hint.empty() && has_set) {
    const std::string key = closest_match(word, keys);
    if (!key.empty()) hint = "--set " + key + "=" + value;
  }
  usage_fail(where(app), "unknown option '", printable(option), "'; ",
             hint.empty() ? "'" + command_path(&app) + " --help' lists the options"
                          : "did you mean '" + printable(hint) + "'?");
}

// The text up to the first ". " or ": " of a description: a one-line summary.
std::string first_clause(const std::string& description) {
  size_t end = description.size();
  for (const char* stop : {". ", ": "}) end = std::min(end, description.find(stop));
  return description.substr(0, end);
}

// `osprey help A B` -> {"A", "B", "--help"}, after checking that A B names a command.
std::vector<std::string> help_request(const CLI::App& app, const std::vector<std::string>& topics) {
  const CLI::App* at = &app;
  for (const std::string& topic : topics) {
    CLI::App* sub = find_subcommand(*at, topic);
    if (!sub) unknown_command(*at, topic);
    at = sub;
  }
  std::vector<std::string> args = topics;
  args.push_back("--help");
  return args;
}

}  // namespace

std::string short_usage(const CLI::App& app) {
  const std::string path = command_path(&app);
  std::string s = "Usage: " + path + " COMMAND [OPTIONS]\n\nCommands:\n";
  size_t width = 0;
  for (const std::string& name : subcommand_names(app)) width = std::max(width, name.size());
  for (const std::string& name : subcommand_names(app)) {
    const CLI::App* sub = find_subcommand(app, name);
    s += "  " + name + std::string(width + 2 - name.size(), ' ') +
         first_clause(sub->get_description()) + "\n";
  }
  const std::string below_top =
      path.substr(path.find(' ') == std::string::npos ? path.size() : path.find(' '));
  return s + "\n'osprey help" + below_top + " COMMAND' (or '" + path +
         " COMMAND --help') tells more.\n";
}

int parse_command_line(CLI::App& app, const std::vector<std::string>& args) {
  std::vector<std::string> words = args;
  if (!words.empty() && words[0] == "help")
    words = help_request(app, std::vector<std::string>(words.begin() + 1, words.end()));
  allow_extras_everywhere(app);
  std::reverse(words.begin(), words.end());  // CLI11 takes the arguments last first
  try {
    app.parse(words);
  } catch (const CLI::Success& e) {  // --help, --help-all, --version
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    const CLI::App* failed_in = &app;  // the innermost command read so far
    while (!failed_in->get_subcommands().empty()) failed_in = failed_in->get_subcommands()[0];
    usage_fail(where(*failed_in), e.what(), "; '", command_path(failed_in), " --help' tells more");
  }
  CLI::App* at = &app;
  while (true) {
    const std::vector<std::string> extras = at->remaining();
    if (!extras.empty()) {
      if (extras[0].rfind('-', 0) == 0) unknown_option(*at, extras);
      if (!subcommand_names(*at).empty() && at->get_subcommands().empty())
        unknown_command(*at, extras[0]);
      usage_fail(where(*at), "unexpected argument '", printable(extras[0]), "'; '",
                 command_path(at), " --help' tells more");
    }
    if (at->get_subcommands().empty()) break;
    at = at->get_subcommands()[0];
  }
  if (!subcommand_names(*at).empty()) {
    std::fputs(short_usage(*at).c_str(), stderr);
    return 2;
  }
  return -1;
}

}  // namespace osprey::tools
