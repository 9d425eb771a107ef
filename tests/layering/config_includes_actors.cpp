// Compiled as the config layer is (see `layering` in tests/CMakeLists.txt):
// config/ sits below actors/, so this include must not be found.
#include "actors/runtime.hpp"
#include "config/log.hpp"
