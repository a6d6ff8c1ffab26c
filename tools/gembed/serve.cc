// gembed serve: an OpenAI- and TEI-compatible embedding service. This file
// only reads flags, opens the engine, and runs the HTTP server until SIGTERM
// or SIGINT; the endpoints live in src/server/ (Service, HttpServer).
#include <fmt/format.h>
#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>

#include "commands.h"
#include "engine/engine.h"
#include "server/http_server.h"
#include "server/service.h"

namespace gembed::cli {
namespace {

struct ServeArgs {
  std::string model, host = "127.0.0.1", api_key, served_model_name, default_task, precision = "fast";
  int port = 8080, threads = 0, max_batch_tokens = 4096, max_concurrent_requests = 256, http_threads = 0;
  size_t max_client_batch_size = 2048, max_body_bytes = 16u << 20, max_queued_tokens = 32768;
  double drain_timeout = 30, request_timeout = 30, read_timeout = 10, keep_alive_timeout = 5;
};

int Fail(const std::string& msg, int rc = 1) {
  std::fprintf(stderr, "gembed serve: %s\n", msg.c_str());
  return rc;
}

// The model's name when --served-model-name is not given: the file or
// folder name without its extension.
std::string DefaultName(const std::string& path) {
  std::filesystem::path p(path);
  while (!p.empty() && p.filename().empty()) p = p.parent_path();  // "folder/"
  std::string name = p.stem().string();
  return name.empty() ? "embeddinggemma" : name;
}

int RunServe(ServeArgs a) {
  if (a.api_key.empty()) {
    if (const char* env = std::getenv("GEMBED_API_KEY"); env != nullptr) a.api_key = env;
  }
  const auto precision = PrecisionFromName(a.precision);
  if (!precision) return Fail(fmt::format("unknown --precision '{}' (fast, high)", a.precision), 2);

  // SIGTERM/SIGINT are taken by one waiting thread (below); every thread
  // started from here on (engine pool, HTTP workers) inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGUSR1);  // internal: the server stopped on its own
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  EngineOptions eopts;
  eopts.threads = a.threads;
  eopts.max_batch_tokens = a.max_batch_tokens;
  eopts.max_queued_tokens = a.max_queued_tokens;
  eopts.precision = *precision;
  auto engine = Engine::Open(a.model, eopts);
  if (!engine.ok()) return Fail(engine.status().ToString());

  server::ServiceOptions sopts;
  sopts.served_model_name = a.served_model_name.empty() ? DefaultName(a.model) : a.served_model_name;
  sopts.model_path = a.model;
  sopts.default_task = a.default_task;
  sopts.api_key = a.api_key;
  sopts.max_client_batch_size = a.max_client_batch_size;
  sopts.max_body_bytes = a.max_body_bytes;
  sopts.max_concurrent_requests = a.max_concurrent_requests;
  sopts.max_queued_tokens = a.max_queued_tokens;
  auto service = server::Service::Create(**engine, sopts);
  if (!service.ok()) return Fail(service.status().message(), 2);

  server::HttpOptions hopts;
  hopts.host = a.host;
  hopts.port = a.port;
  hopts.worker_threads = a.http_threads;
  hopts.request_timeout_s = a.request_timeout;
  hopts.read_timeout_s = a.read_timeout;
  hopts.keep_alive_timeout_s = a.keep_alive_timeout;
  server::HttpServer http(**service, hopts);
  auto port = http.Bind();
  if (!port.ok()) return Fail(port.status().message());

  const std::string host = a.host.find(':') != std::string::npos ? "[" + a.host + "]" : a.host;
  std::printf("gembed serve: listening on http://%s:%d (model %s, %d threads, %s)\n", host.c_str(), *port,
              sopts.served_model_name.c_str(), (*engine)->threads(), (*engine)->isa().c_str());
  std::fflush(stdout);

  // SIGTERM/SIGINT: drain (stop accepting, answer what is in flight); a second
  // signal or the drain deadline drops what is left.
  std::atomic<bool> stopped{false};
  std::atomic<int> exit_code{0};
  std::thread waiter([&] {
    int sig = 0;
    if (sigwait(&signals, &sig) != 0 || sig == SIGUSR1) return;
    std::fprintf(stderr, "gembed serve: %s: draining (%zu requests in flight, up to %.0f s)\n",
                 sig == SIGINT ? "SIGINT" : "SIGTERM", (*service)->requests_in_flight(), a.drain_timeout);
    http.Drain();
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(a.drain_timeout);
    while (!stopped.load()) {
      const timespec tick{0, 100 * 1000 * 1000};
      const int s = sigtimedwait(&signals, nullptr, &tick);
      if (s == SIGUSR1) break;
      if (s == SIGTERM || s == SIGINT || std::chrono::steady_clock::now() >= deadline) {
        std::fprintf(stderr, "gembed serve: %s; dropping the %zu requests still in flight\n",
                     s > 0 ? "second signal" : "drain timeout", (*service)->requests_in_flight());
        exit_code.store(1);
        http.Abort();
        break;
      }
    }
  });

  const Status st = http.Run();
  stopped.store(true);
  pthread_kill(waiter.native_handle(), SIGUSR1);
  waiter.join();
  if (!st.ok()) return Fail(st.message());
  std::fprintf(stderr, "gembed serve: stopped\n");
  return exit_code.load();
}

}  // namespace

Command MakeServeCommand(CLI::App& root) {
  CLI::App* app = root.add_subcommand(
      "serve", "Serve embeddings over HTTP: OpenAI /v1/embeddings, TEI /embed and /tokenize, /health, /metrics");
  auto a = std::make_shared<ServeArgs>();
  app->add_option("--model", a->model, "EmbeddingGemma .gguf file or Hugging Face sentence-transformers folder")
      ->required();
  app->add_option("--host", a->host, "Address to listen on (default 127.0.0.1: this machine only)");
  app->add_option("--port", a->port, "Port (default 8080; 0: any free port, printed when ready)")
      ->check(CLI::Range(0, 65535));
  app->add_option("--threads", a->threads, "Compute threads (default: all cores)")->check(CLI::Range(0, 1024));
  app->add_option("--api-key", a->api_key,
                  "Require 'Authorization: Bearer KEY' (default: the GEMBED_API_KEY environment variable; "
                  "none: no key). /health stays open");
  app->add_option("--max-batch-tokens", a->max_batch_tokens,
                  "Tokens per forward pass (default 4096; at least the model's context length)")
      ->check(CLI::Range(1, 1 << 20));
  app->add_option("--max-client-batch-size", a->max_client_batch_size, "Inputs per request (default 2048; more: 413)")
      ->check(CLI::Range(size_t{1}, size_t{1} << 24));
  app->add_option("--max-concurrent-requests", a->max_concurrent_requests,
                  "Embedding requests handled at once (default 256; more: 429). One HTTP worker thread each")
      ->check(CLI::Range(1, 8192));
  app->add_option("--max-body-bytes", a->max_body_bytes, "Request body size limit (default 16 MiB; more: 413)")
      ->check(CLI::Range(size_t{64}, size_t{1} << 34));
  app->add_option("--max-queued-tokens", a->max_queued_tokens,
                  "Tokens waiting for a forward pass, all requests together, before new requests get 429 "
                  "with Retry-After (default 32768; 0: no limit)");
  app->add_option("--served-model-name", a->served_model_name,
                  "Model id for /v1/models and responses (default: the model file name)");
  app->add_option("--default-task", a->default_task,
                  "Task prompt for texts whose request names no task or prompt (e.g. query, document)");
  app->add_option("--precision", a->precision, "Q8_0 arithmetic: fast (default) or high");
  app->add_option("--drain-timeout", a->drain_timeout,
                  "Seconds SIGTERM/SIGINT waits for in-flight requests before dropping them (default 30)")
      ->check(CLI::Range(0.0, 86400.0));
  app->add_option("--request-timeout", a->request_timeout,
                  "Seconds a client has to send a whole request (default 30; slower: 408)")
      ->check(CLI::Range(0.1, 86400.0));
  app->add_option("--read-timeout", a->read_timeout,
                  "Longest pause while a request is being received (default 10 s; longer: 408)")
      ->check(CLI::Range(0.1, 86400.0));
  app->add_option("--keep-alive-timeout", a->keep_alive_timeout, "Idle keep-alive connections close after this (default 5 s)")
      ->check(CLI::Range(0.1, 3600.0));
  app->add_option("--http-threads", a->http_threads,
                  "HTTP worker threads, one per open connection (default: --max-concurrent-requests + 4)")
      ->check(CLI::Range(0, 16384));
  return {app, [a] { return RunServe(*a); }};
}

}  // namespace gembed::cli
