#include "scenarios/pipeline_layout.hpp"

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <stdexcept>

namespace moesim {
namespace {

constexpr std::size_t kMaxSymbols = 1000000;

// Recursive descent over the string: a sequence of items, each a symbol or a parenthesised group,
// either optionally followed by "*n". Produces the expanded symbol string.
// Commas are cosmetic, as in Megatron-Core (PipelineParallelLayerLayout.from_str removes them before
// parsing, so "(t*2|)*34,t*3" reads as "(t*2|)*34t*3"): the parser reads the string without them, and
// `at` maps each of its characters back to the original for messages.
struct Parser {
  std::string s;
  std::vector<std::size_t> at;
  std::size_t i = 0;

  explicit Parser(const std::string& layout) {
    for (std::size_t k = 0; k < layout.size(); ++k)
      if (layout[k] != ',') {
        s += layout[k];
        at.push_back(k);
      }
    at.push_back(layout.size());
  }
  [[noreturn]] void fail(const std::string& what) const {
    throw std::invalid_argument("at character " + std::to_string(at[std::min(i, s.size())] + 1) + ": " +
                                what);
  }
  void skip() {
    while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
  }
  // A repeat count after '*', else 1.
  std::size_t count() {
    skip();
    if (i >= s.size() || s[i] != '*') return 1;
    ++i;
    skip();
    if (i >= s.size() || !std::isdigit(static_cast<unsigned char>(s[i])))
      fail("expected a repeat count after '*'");
    std::uint64_t n = 0;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) {
      n = n * 10 + static_cast<std::uint64_t>(s[i] - '0');
      if (n > kMaxSymbols) fail("repeat count above " + std::to_string(kMaxSymbols));
      ++i;
    }
    if (n == 0) fail("a repeat count of 0 (counts start at 1)");
    return static_cast<std::size_t>(n);
  }
  void repeat(std::string& out, const std::string& item, std::size_t n) const {
    if (item.size() * n + out.size() > kMaxSymbols)
      throw std::invalid_argument("expands beyond " + std::to_string(kMaxSymbols) + " symbols");
    for (std::size_t k = 0; k < n; ++k) out += item;
  }
  std::string sequence(bool nested) {
    std::string out;
    for (;;) {
      skip();
      if (i >= s.size()) {
        if (nested) fail("expected ')' before the end");
        return out;
      }
      const char c = s[i];
      if (c == ')') {
        if (!nested) fail("')' without '('");
        ++i;
        return out;
      }
      if (c == '(') {
        ++i;
        const std::string inner = sequence(true);
        repeat(out, inner, count());
        continue;
      }
      if (c == 'E' || c == 't' || c == 'm' || c == 'L' || c == '|') {
        ++i;
        repeat(out, std::string(1, c), count());
        continue;
      }
      fail(std::string("unknown symbol '") + c + "' (expected E, t, m, L, '|', '(' or ')')");
    }
  }
};

}  // namespace

std::vector<LayoutStage> parse_pipeline_layout(const std::string& layout) {
  Parser p(layout);
  const std::string sym = p.sequence(false);
  std::vector<LayoutStage> stages(1);
  for (char c : sym) {
    LayoutStage& st = stages.back();
    switch (c) {
      case '|':
        stages.emplace_back();
        break;
      case 't':
        ++st.decoder;
        st.decoder_after_mtp = st.decoder_after_mtp || st.mtp > 0;
        break;
      case 'm':
        ++st.mtp;
        break;
      case 'E':
        st.embedding = true;
        break;
      case 'L':
        st.loss = true;
        break;
      default:
        break;
    }
  }
  return stages;
}

LayoutProblem check_pipeline_layout(const std::vector<LayoutStage>& parsed, int layers, int mtp, int stages) {
  if (static_cast<int>(parsed.size()) != stages)
    return {std::to_string(stages) + " stages (pp x vpp)", std::to_string(parsed.size())};
  int t = 0, m = 0, e = 0, l = 0;
  for (std::size_t k = 0; k < parsed.size(); ++k) {
    const LayoutStage& st = parsed[k];
    if (st.decoder_after_mtp || (st.decoder > 0 && m > 0))
      return {"MTP layers after every decoder layer",
              "a decoder layer in stage " + std::to_string(k) + " after an MTP layer"};
    t += st.decoder, m += st.mtp, e += st.embedding, l += st.loss;
    if (st.embedding && k != 0) return {"the embedding 'E' in stage 0", "it in stage " + std::to_string(k)};
    if (st.loss && k + 1 != parsed.size())
      return {"the loss 'L' in the last stage", "it in stage " + std::to_string(k)};
  }
  if (t != layers) return {std::to_string(layers) + " decoder layers 't'", std::to_string(t)};
  if (m != mtp) return {std::to_string(mtp) + " MTP layers 'm'", std::to_string(m)};
  if (e != 1) return {"one embedding 'E' (in stage 0)", std::to_string(e)};
  if (l != 1) return {"one loss 'L' (in the last stage)", std::to_string(l)};
  return {};
}

}  // namespace moesim
