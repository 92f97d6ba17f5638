#include "cli/cli.h"
int aios_cmd_teach(int argc, char **argv) { return 2; }
int aios_cmd_evolve(int argc, char **argv) { return 2; }
