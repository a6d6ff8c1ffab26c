// The usage example of gembed.hpp's header comment, as C++20 (designated
// initializers on the option structs), built with -Werror like the others.
#include <gembed/gembed.hpp>

#include <cstdio>

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  try {
    gembed::Engine engine = gembed::Engine::Open(argv[1], {.threads = 2});
    gembed::EmbedOptions o;
    o.task = "query";
    o.dim = 128;
    std::vector<float> q = engine.EmbedOne("Which planet is known as the Red Planet?", o);
    std::vector<std::vector<float>> d = engine.Embed({"Mars ...", "Venus ..."}, {.task = "document", .dim = 128});
    double dot = 0;
    for (size_t i = 0; i < q.size(); ++i) dot += double(q[i]) * d[0][i];
    std::printf("%zu %zu %zu %.6f\n", q.size(), d.size(), d[0].size(), dot);
    return 0;
  } catch (const gembed::Error& e) {
    std::fprintf(stderr, "example: %s\n", e.what());
    return 1;
  }
}
