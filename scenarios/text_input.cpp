#include "scenarios/text_input.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

namespace moesim {

std::string describe_bytes(std::size_t bytes) {
  if (bytes >= (std::size_t{1} << 20) && bytes % (std::size_t{1} << 20) == 0)
    return std::to_string(bytes >> 20) + " MiB";
  if (bytes >= (std::size_t{1} << 10) && bytes % (std::size_t{1} << 10) == 0)
    return std::to_string(bytes >> 10) + " KiB";
  return std::to_string(bytes) + " bytes";
}

TextFile read_text_file(const std::string& path, std::size_t max_bytes) {
  TextFile out;
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    out.status = TextRead::kDirectory;
    return out;
  }
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) {
    out.status = TextRead::kCannotOpen;
    out.error = errno;
    return out;
  }
  char buf[1 << 16];
  std::size_t got;
  while ((got = std::fread(buf, 1, sizeof buf, f)) > 0) {
    if (out.text.size() + got > max_bytes) {
      out.status = TextRead::kTooLarge;
      out.text.clear();
      out.text.shrink_to_fit();
      std::fclose(f);
      return out;
    }
    out.text.append(buf, got);
  }
  if (std::ferror(f) != 0) {
    out.status = TextRead::kReadError;
    out.error = errno;
    out.text.clear();
  }
  std::fclose(f);
  return out;
}

std::string describe_failed_read(const TextFile& f, std::size_t max_bytes) {
  switch (f.status) {
    case TextRead::kOk:
      return "a readable file";
    case TextRead::kCannotOpen:
      return std::string("none (") + std::strerror(f.error) + ")";
    case TextRead::kDirectory:
      return "a directory";
    case TextRead::kReadError:
      return f.error != 0 ? std::string("a read error (") + std::strerror(f.error) + ")" : "a read error";
    case TextRead::kTooLarge:
      return "more than " + describe_bytes(max_bytes) + " (the largest input read)";
  }
  return "an unreadable file";
}

LineRead read_line(std::istream& in, std::string& line, std::size_t max_bytes) {
  line.clear();
  std::streambuf* sb = in.rdbuf();
  if (!sb || !in.good()) {
    in.setstate(std::ios::failbit | std::ios::eofbit);
    return LineRead::kEnd;
  }
  using Traits = std::char_traits<char>;
  bool any = false;
  for (;;) {
    const Traits::int_type c = sb->sbumpc();
    if (Traits::eq_int_type(c, Traits::eof())) {
      in.setstate(any ? std::ios::eofbit : std::ios::eofbit | std::ios::failbit);
      return any ? LineRead::kLine : LineRead::kEnd;
    }
    any = true;
    const char ch = Traits::to_char_type(c);
    if (ch == '\n') return LineRead::kLine;
    if (line.size() >= max_bytes) {
      in.setstate(std::ios::failbit);
      return LineRead::kTooLong;
    }
    line.push_back(ch);
  }
}

}  // namespace moesim
