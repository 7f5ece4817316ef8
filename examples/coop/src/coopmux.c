/* coopmux: the second binary, compiled in the `build` stage with the toolchain of `empty`. */
#include <stdio.h>

int main(int argc, char **argv) {
  printf("coopmux 0.1.0 muxing %d session(s)\n", argc > 1 ? argc - 1 : 0);
  for (int i = 1; i < argc; i++) printf("  session %s\n", argv[i]);
  return 0;
}
