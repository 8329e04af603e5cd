// roomsyncctl: the operators' tool (docs/operations.md).
#include <iostream>
#include <string>
#include <vector>

#include "tools/roomsyncctl/commands.h"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  return roomsync::ctl::Run(args, std::cout, std::cerr);
}
