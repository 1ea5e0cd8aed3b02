// Help text generated from the config key table (config_reference()), so the documentation
// of the keys cannot drift from what the parser accepts.
#pragma once
#include <string>

namespace osprey::tools {

// Every key with its type, default, allowed values and meaning, aligned for `width` columns,
// followed by how config files and --set values are read.
std::string config_reference_text(size_t width = 100);

// Words of `text` in lines of at most `width` columns (a longer word gets a line of its own);
// lines after the first start with `indent` spaces, the first is assumed to be there already.
std::string wrap_words(const std::string& text, size_t width, size_t indent);

}  // namespace osprey::tools
