// The benchmark's ceiling: Bulwark's own HTTP and JSON layers (the same
// transport code, simdjson parse and JSON writer) answering every POST on the
// I/O thread, with no actors behind it. It runs the checks of the bytes
// (Host/Origin, path, Content-Type, Accept, JSON parse, JSON-RPC shape) and
// skips everything that needs a runtime: no route checks (era, session
// lookup, mirrored headers against the body), no sessions (initialize gets
// no Mcp-Session-Id; GET and DELETE get 405), no actors, no tool, and the
// answer is an empty result. README, Benchmark, lists it in full.
#include <csignal>
#include <cstdlib>
#include <iostream>
#include <string>

#include "transport/http_server.hpp"

int main(int argc, char** argv) {
  bulwark::http_options opts;
  opts.port = 0;
  opts.echo_mode = true;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--port" && i + 1 < argc)
      opts.port = static_cast<uint16_t>(std::atoi(argv[++i]));
    else if (a == "--address" && i + 1 < argc)
      opts.address = argv[++i];
    else {
      std::cerr << "usage: bulwark-echo [--address A] [--port N]\n";
      return 2;
    }
  }
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  bulwark::http_server server(nullptr, opts);
  auto port = server.start();
  std::cout << "{\"listening\":" << port << "}" << std::endl;
  int sig = 0;
  sigwait(&signals, &sig);
  server.stop();
  return 0;
}
